"""A small typed name → object registry shared by datasets, models, distillers and protocols.

Shape borrowed from timm / torchvision ``models/_api.py``: builders register once with a decorator,
``names()`` filters with fnmatch patterns, and an unknown name raises a one-line error listing the close
and the available names instead of a ``KeyError``.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from benchmark.errors import BenchmarkError, unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects of one kind; ``populate`` hooks add lazily discovered entries."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._populators: list[Callable[[], None]] = []
        self._populated = False

    def add_populator(self, populate: Callable[[], None]) -> None:
        """Register a callable that imports or discovers entries the first time the registry is read."""
        self._populators.append(populate)
        self._populated = False

    def _ensure_populated(self) -> None:
        if self._populated:
            return
        self._populated = True
        for populate in self._populators:
            populate()

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; used bare as a decorator when ``obj`` is omitted."""

        def add(item: T) -> T:
            if name in self._entries and self._entries[name] is not item:
                raise BenchmarkError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = item
            return item

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        self._ensure_populated()
        try:
            return self._entries[name]
        except KeyError:
            raise unknown_name(self.kind, name, self._entries) from None

    def __contains__(self, name: str) -> bool:
        self._ensure_populated()
        return name in self._entries

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching an fnmatch ``pattern``, sorted."""
        self._ensure_populated()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def items(self, pattern: str = "*") -> Iterator[tuple[str, T]]:
        for name in self.names(pattern):
            yield name, self._entries[name]


def first_doc_line(obj: object) -> str:
    """The first line of an object's docstring: the one-line description ``benchmark.list`` prints."""
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
