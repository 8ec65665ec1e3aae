"""Datasets: specs, loaders for each dataset's native format, and the per-class view methods use."""

from benchmark.data import catalog as _catalog  # noqa: F401  (registers every built-in dataset)
from benchmark.data import validation as _validation  # noqa: F401  (registers val:NAME)
from benchmark.data.images import InMemoryImages, LabelledImages
from benchmark.data.registry import (
    DataOptions,
    Dataset,
    clear_dataset_cache,
    dataset_spec,
    list_datasets,
    load_dataset,
    register_dataset,
)
from benchmark.data.spec import DatasetSpec

__all__ = [
    "DataOptions",
    "Dataset",
    "DatasetSpec",
    "InMemoryImages",
    "LabelledImages",
    "clear_dataset_cache",
    "dataset_spec",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]
