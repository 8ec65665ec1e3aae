"""The dataset registry: names → (spec, loader), plus ``npz:PATH`` and ``folder:PATH`` user sources.

A loaded :class:`Dataset` is cached per (name, data root, device) within a process, since the grid
runner visits the same dataset for many cells.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmark.data.images import LabelledImages
from benchmark.data.spec import DatasetSpec
from benchmark.errors import BenchmarkError
from benchmark.registry import Registry


@dataclass(frozen=True)
class DataOptions:
    """Where datasets live and whether they may be downloaded; parsed once at the command line."""

    data_root: Path = Path("data")
    download: bool = False
    device: str = "cpu"


@dataclass(frozen=True)
class Dataset:
    """A dataset's spec with its train and test splits."""

    spec: DatasetSpec
    train: LabelledImages
    test: LabelledImages

    @property
    def source(self) -> str:
        return self.train.source


Loader = Callable[[DatasetSpec, DataOptions], tuple[LabelledImages, LabelledImages]]


@dataclass(frozen=True)
class DatasetEntry:
    spec: DatasetSpec
    loader: Loader


DATASETS: Registry[DatasetEntry] = Registry("dataset")
DYNAMIC_PREFIXES: dict[str, Callable[[str], DatasetEntry]] = {}


def register_dataset(spec: DatasetSpec, loader: Loader) -> DatasetSpec:
    DATASETS.register(spec.name, DatasetEntry(spec, loader))
    return spec


def register_dynamic_source(prefix: str, resolve: Callable[[str], DatasetEntry]) -> None:
    """``prefix:ARG`` dataset names are resolved by ``resolve(ARG)`` (e.g. ``npz:my.npz``)."""
    DYNAMIC_PREFIXES[prefix] = resolve


def dataset_entry(name: str) -> DatasetEntry:
    prefix, sep, arg = name.partition(":")
    if sep and prefix in DYNAMIC_PREFIXES:
        return _dynamic_entry(prefix, arg)
    if sep:
        raise BenchmarkError(f"unknown dataset source '{prefix}:' in '{name}'; "
                             f"available prefixes: {', '.join(p + ':' for p in sorted(DYNAMIC_PREFIXES))}")
    return DATASETS.get(name)


@functools.lru_cache(maxsize=32)
def _dynamic_entry(prefix: str, arg: str) -> DatasetEntry:
    return DYNAMIC_PREFIXES[prefix](arg)


def dataset_spec(name: str) -> DatasetSpec:
    return dataset_entry(name).spec


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.names(pattern)


_LOADED: dict[tuple[str, str, bool, str], Dataset] = {}


def load_dataset(name: str, options: DataOptions | None = None) -> Dataset:
    """Load a dataset's train and test splits onto ``options.device`` (cached per process)."""
    options = options or DataOptions()
    key = (name, str(Path(options.data_root).resolve()), options.download, options.device)
    if key not in _LOADED:
        entry = dataset_entry(name)
        train, test = entry.loader(entry.spec, options)
        _LOADED[key] = Dataset(entry.spec, train.to(options.device), test.to(options.device))
    return _LOADED[key]


def clear_dataset_cache() -> None:
    _LOADED.clear()
    _dynamic_entry.cache_clear()
