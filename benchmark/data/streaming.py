"""Datasets that do not fit in memory (ImageNet-1K): files are listed once and decoded on demand.

Offers the interface of :class:`benchmark.data.images.LabelledImages`, so every method and the
evaluator work unchanged; only the cost of an access differs (a JPEG decode per image).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from benchmark.data.image_files import decode_images
from benchmark.data.images import LabelledImages
from benchmark.data.spec import DatasetSpec


class StreamingImages(LabelledImages):
    """Image files with labels; pixels are decoded, resized and normalised only when asked for."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], spec: DatasetSpec, source: str = "",
                 device: torch.device | str = "cpu", decode_threads: int = 8) -> None:
        super().__init__(torch.tensor(list(labels), dtype=torch.long), spec, source)
        self.paths = list(paths)
        self._device = torch.device(device)
        self._threads = decode_threads
        self._mean = torch.tensor(spec.mean, device=self._device).view(1, -1, 1, 1)
        self._std = torch.tensor(spec.std, device=self._device).view(1, -1, 1, 1)

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device: torch.device | str) -> StreamingImages:
        return StreamingImages(self.paths, self.labels.tolist(), self.spec, self.source, device, self._threads)

    def images_at(self, indices: Tensor) -> Tensor:
        pixels = decode_images([self.paths[i] for i in indices.tolist()], self.spec.resolution,
                               self.spec.channels, self._threads).to(self._device)
        return (pixels.float() / 255.0 - self._mean) / self._std
