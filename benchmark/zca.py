"""ZCA whitening of a dataset, fitted once and cached: the input space MTT distils CIFAR in.

Follows GeorgeCazenavette/mtt-distillation ``utils.py::get_dataset`` with ``--zca``: the whitening is
``kornia.enhance.ZCAWhitening(eps=0.1)`` (unbiased covariance) fitted on the whole training split as
*un-normalised* [0, 1] pixels — the reference drops its mean/std normalisation when it whitens, and the
regulariser ``eps`` is only meaningful on that scale — and the same fitted transform is applied to the
test split. Images reach this module normalised (:mod:`benchmark.data`), so :class:`ZCA` undoes the
dataset's channel normalisation before whitening.

A synthetic set that lives in whitened space says so with the eval hint ``{"zca": {"eps": 0.1}}``;
:mod:`benchmark.evaluate` then whitens the real test set with the fit of the same training split, so
evaluation sees what distillation saw. Fits are cached (checksummed) under the store's cache directory,
keyed by the dataset and ``eps``, so distillation and evaluation cells share one fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from kornia.enhance import linear_transform, zca_mean
from torch import Tensor

from benchmark.checkpoints import cache_entry, load_or_build
from benchmark.data.images import LabelledImages
from benchmark.data.spec import DatasetSpec
from benchmark.errors import BenchmarkError, invalid_value

MAX_FEATURES = 3 * 64 * 64  # a D×D matrix beyond this (ImageNet at 128 px: 49152²) is not worth storing
FIT_BATCH = 4096


@dataclass
class ZCA:
    """A fitted whitening: ``(raw − mean) @ transform`` on flattened [0, 1] pixels."""

    mean: Tensor  # (1, D)
    transform: Tensor  # (D, D)
    channel_mean: Tensor  # (C,) the dataset normalisation undone before whitening
    channel_std: Tensor  # (C,)
    eps: float

    def to(self, device: torch.device | str) -> ZCA:
        return ZCA(self.mean.to(device), self.transform.to(device), self.channel_mean.to(device),
                   self.channel_std.to(device), self.eps)

    def __call__(self, x: Tensor) -> Tensor:
        """Normalised images (N, C, H, W) → whitened images of the same shape."""
        raw = x * self.channel_std.view(1, -1, 1, 1) + self.channel_mean.view(1, -1, 1, 1)
        return linear_transform(raw, self.transform, self.mean)

    def state(self) -> dict:
        return {"mean": self.mean.cpu(), "transform": self.transform.cpu(), "channel_mean": self.channel_mean.cpu(),
                "channel_std": self.channel_std.cpu(), "eps": self.eps}


def fit_zca(images: Tensor, spec: DatasetSpec, eps: float) -> ZCA:
    """Fit on normalised images (N, C, H, W) of ``spec``: kornia's ZCA of the un-normalised pixels."""
    channel_mean = torch.tensor(spec.mean, dtype=torch.float32, device=images.device)
    channel_std = torch.tensor(spec.std, dtype=torch.float32, device=images.device)
    raw = images * channel_std.view(1, -1, 1, 1) + channel_mean.view(1, -1, 1, 1)
    transform, mean, _ = zca_mean(raw, dim=0, unbiased=True, eps=float(eps))
    return ZCA(mean, transform, channel_mean, channel_std, float(eps))


def _cache_path(cache_dir: Path, spec: DatasetSpec, train_size: int, eps: float) -> Path:
    return cache_entry(cache_dir, "zca", spec, {"n": train_size, "eps": eps, "fit": "kornia-zca-unbiased-raw01"})


def check_zca(spec: DatasetSpec, eps: float) -> None:
    """One-line errors for a whitening that cannot be fitted."""
    if not eps > 0:
        raise invalid_value("zca eps", eps, "a positive number")
    features = spec.channels * spec.resolution**2
    if features > MAX_FEATURES:
        raise BenchmarkError(f"ZCA whitening of {spec.name} needs a {features}x{features} matrix; it is supported up "
                             f"to {MAX_FEATURES} features per image (64x64 colour)")


def dataset_zca(train: LabelledImages, eps: float, cache_dir: Path, device: torch.device) -> ZCA:
    """The whitening fitted on the whole of ``train``, from the cache when an intact fit is there."""
    spec = train.spec
    check_zca(spec, eps)
    def fit() -> dict[str, Tensor | float]:
        index = torch.arange(len(train), device=train.labels.device)
        images = torch.cat([train.images_at(index[i : i + FIT_BATCH]).to(device)
                            for i in range(0, len(train), FIT_BATCH)])
        return fit_zca(images, spec, eps).state()

    state = load_or_build(_cache_path(cache_dir, spec, len(train), eps), fit, device, "ZCA cache").value
    return ZCA(state["mean"], state["transform"], state["channel_mean"], state["channel_std"], state["eps"])


class WhitenedImages(LabelledImages):
    """A view of labelled images that whitens on access (same labels, classes and order)."""

    def __init__(self, base: LabelledImages, zca: ZCA) -> None:
        super().__init__(base.labels, base.spec, f"{base.source} (ZCA eps={zca.eps})")
        self.base = base
        self.zca = zca.to(base.device)

    @property
    def device(self) -> torch.device:
        return self.base.device

    def images_at(self, indices: Tensor) -> Tensor:
        return self.zca(self.base.images_at(indices))

    def to(self, device: torch.device | str) -> WhitenedImages:
        return WhitenedImages(self.base.to(device), self.zca)
