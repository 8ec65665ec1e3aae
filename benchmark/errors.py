"""User-facing errors: one line that names the field, the value and what is allowed.

Command-line entry points catch :class:`BenchmarkError`, print its message and exit with status 2, so a
user never sees a traceback for bad input.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchmarkError(Exception):
    """An error caused by the user's input or environment, reported as a single line."""

    def __str__(self) -> str:
        return " ".join(str(self.args[0]).split()) if self.args else ""


def first_line(error: BaseException) -> str:
    """The first line of a foreign exception's message (torch's and inductor's run to pages), or its type's
    name when it has none: what a one-line :class:`BenchmarkError` quotes of it."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def unknown_name(kind: str, name: str, available: Iterable[str]) -> BenchmarkError:
    """Error for an unknown registry name, listing close matches first and then every allowed name."""
    names = sorted(available)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return BenchmarkError(f"unknown {kind} '{name}'{hint}; available: {', '.join(names) or 'none'}")


def invalid_value(field: str, value: object, allowed: str) -> BenchmarkError:
    """Error for a value outside its allowed range."""
    return BenchmarkError(f"invalid {field}={value!r}: {allowed}")
