"""Labelled images with a per-class index: the one view of a dataset that methods and evaluator use.

:class:`InMemoryImages` keeps pixels in one tensor in their stored dtype (``uint8`` for most datasets,
``float`` in [0, 1] otherwise) and normalises on access, so a 100k-image dataset costs one byte per
value on the device rather than four. :class:`benchmark.data.streaming.StreamingImages` offers the same
interface for data that does not fit in memory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch import Tensor

from benchmark.data.spec import DatasetSpec
from benchmark.errors import BenchmarkError


class LabelledImages(ABC):
    """Images with integer labels, indexable per class; subclasses say how pixels are fetched."""

    def __init__(self, labels: Tensor, spec: DatasetSpec, source: str) -> None:
        if labels.ndim != 1:
            raise BenchmarkError(f"dataset {spec.name}: labels must be a flat vector, got shape {tuple(labels.shape)}")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= spec.num_classes):
            raise BenchmarkError(
                f"dataset {spec.name}: labels must lie in [0, {spec.num_classes - 1}], "
                f"found [{int(labels.min())}, {int(labels.max())}]"
            )
        self.spec = spec
        self.source = source
        self.labels = labels.long()
        order = torch.argsort(self.labels, stable=True)
        counts = torch.bincount(self.labels, minlength=spec.num_classes).tolist()
        self._class_indices = list(torch.split(order, counts))

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @abstractmethod
    def images_at(self, indices: Tensor) -> Tensor:
        """Normalised float images at the given dataset indices, on :attr:`device`."""

    @abstractmethod
    def to(self, device: torch.device | str) -> LabelledImages: ...

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def __len__(self) -> int:
        return self.labels.shape[0]

    def class_sizes(self) -> list[int]:
        return [len(idx) for idx in self._class_indices]

    def indices_of_class(self, c: int) -> Tensor:
        return self._class_indices[c]

    def sample_indices_of_class(self, c: int, n: int, generator: torch.Generator) -> Tensor:
        """``n`` distinct random indices of class ``c`` (all of them, shuffled, if the class is smaller)."""
        idx = self._class_indices[c]
        perm = torch.randperm(len(idx), generator=generator, device=generator.device)[:n]
        return idx[perm.to(idx.device)]

    def images_of_class(self, c: int, n: int, generator: torch.Generator) -> Tensor:
        """``n`` random normalised images of class ``c``, drawn without replacement."""
        return self.images_at(self.sample_indices_of_class(c, n, generator))

    def all_images_of_class(self, c: int) -> Tensor:
        return self.images_at(self._class_indices[c])

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """Normalised (images, labels) batches in order, or shuffled when a generator is given."""
        n = len(self)
        if generator is not None:
            order = torch.randperm(n, generator=generator, device=generator.device).to(self.labels.device)
        else:
            order = torch.arange(n, device=self.labels.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield self.images_at(idx), self.labels[idx].to(self.device)


class InMemoryImages(LabelledImages):
    """Images (N, C, H, W) held in one tensor on one device."""

    def __init__(self, pixels: Tensor, labels: Tensor, spec: DatasetSpec, source: str = "") -> None:
        if pixels.ndim != 4 or pixels.shape[1:] != torch.Size(spec.shape):
            raise BenchmarkError(
                f"dataset {spec.name}: images have shape {tuple(pixels.shape[1:])}, expected {spec.shape}"
            )
        if labels.shape != (pixels.shape[0],):
            raise BenchmarkError(f"dataset {spec.name}: {len(labels)} labels for {len(pixels)} images")
        super().__init__(labels.to(pixels.device), spec, source)
        self.pixels = pixels
        self._scale = 1.0 / 255.0 if pixels.dtype == torch.uint8 else 1.0
        self._mean = torch.tensor(spec.mean, dtype=torch.float32, device=pixels.device).view(1, -1, 1, 1)
        self._std = torch.tensor(spec.std, dtype=torch.float32, device=pixels.device).view(1, -1, 1, 1)

    @property
    def device(self) -> torch.device:
        return self.pixels.device

    def to(self, device: torch.device | str) -> InMemoryImages:
        device = torch.device(device)
        if device == self.device:
            return self
        return InMemoryImages(self.pixels.to(device), self.labels.to(device), self.spec, self.source)

    def normalise(self, pixels: Tensor) -> Tensor:
        """Stored pixels → float images normalised with the dataset's mean and std."""
        return (pixels.float() * self._scale - self._mean) / self._std

    def images_at(self, indices: Tensor) -> Tensor:
        return self.normalise(self.pixels[indices])
