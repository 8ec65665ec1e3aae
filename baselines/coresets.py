"""Coreset baselines: real training images chosen per class, and the whole training set as the upper bound.

* ``random``: class-balanced uniformly random real images (DC paper, Table 1 "Random").
* ``herding``: per class, greedily add the image that keeps the mean embedding of the chosen set closest
  to the class mean (Welling, ICML 2009; the DC paper's "Herding" baseline; DeepCore ``herding.py``).
* ``kcenter``: per class, k-center greedy — start from a random image, repeatedly add the image farthest
  from its nearest chosen one (Sener & Savarese, ICLR 2018; DC paper's "K-Center"; DeepCore
  ``kcentergreedy.py``).
* ``full``: the whole real training set, trained for the protocol's ``full_data_epochs`` (the DC paper's
  "Whole dataset" row).

Herding and k-center select in the embedding space of a ConvNet trained briefly on the real data
(:mod:`baselines.feature_net`); ``feature_epochs`` is 5 for ``paper`` and 1 for ``cpu-small`` — the
DC paper does not state its schedule, so this is the project's documented choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from baselines.feature_net import training_split_embeddings
from benchmark.data.spec import DatasetSpec
from benchmark.distiller import (
    Artifact,
    Distiller,
    DistillTask,
    LoadContext,
    PixelArtifact,
    RealTrainingSet,
    SyntheticSet,
    register_distiller,
)
from benchmark.errors import BenchmarkError, invalid_value
from benchmark.synthetic import check_ipc


def pixel_artifact_from_indices(task: DistillTask, per_class: list[Tensor], extra: dict | None = None) -> PixelArtifact:
    x = torch.cat([task.train.images_at(idx) for idx in per_class])
    y = torch.cat([torch.full((len(idx),), c, dtype=torch.long) for c, idx in enumerate(per_class)])
    return PixelArtifact(SyntheticSet(x.detach().cpu(), y), task.ipc, extra)


def ensure_class_sizes(task: DistillTask) -> None:
    smallest = min(task.train.class_sizes())
    if task.ipc > smallest:
        raise invalid_value("ipc", task.ipc, f"at most {smallest}, the smallest class of {task.spec.name}")


@register_distiller("random")
class RandomCoreset(Distiller):
    """Class-balanced random real images (the floor every method must beat)."""

    def check(self, spec: DatasetSpec, ipc: int | None) -> None:
        check_ipc(spec, ipc)

    def distill(self, task: DistillTask) -> Artifact:
        ensure_class_sizes(task)
        rng = task.generator("random-subset", device="cpu")
        per_class = [task.train.sample_indices_of_class(c, task.ipc, rng) for c in range(task.spec.num_classes)]
        return pixel_artifact_from_indices(task, per_class)


@dataclass(frozen=True)
class EmbeddingCoresetHparams:
    feature_epochs: int = 5

    def __post_init__(self) -> None:
        if self.feature_epochs < 0:
            raise invalid_value("feature_epochs", self.feature_epochs, "a non-negative integer")


def herding_order(features: Tensor, k: int) -> list[int]:
    """Indices of ``k`` rows whose running mean tracks the mean of all rows (greedy herding)."""
    target = features.mean(dim=0)
    chosen: list[int] = []
    running = torch.zeros_like(target)
    available = torch.ones(len(features), dtype=torch.bool, device=features.device)
    for step in range(1, k + 1):
        candidate_means = (running * (step - 1) + features) / step
        dist = (candidate_means - target).norm(dim=1)
        dist[~available] = float("inf")
        i = int(dist.argmin())
        chosen.append(i)
        available[i] = False
        running = candidate_means[i]
    return chosen


def kcenter_order(features: Tensor, k: int, first: int) -> list[int]:
    """Greedy k-center: start at ``first``, then repeatedly the row farthest from every chosen row."""
    chosen = [first]
    min_dist = (features - features[first]).norm(dim=1)
    for _ in range(k - 1):
        i = int(min_dist.argmax())
        chosen.append(i)
        min_dist = torch.minimum(min_dist, (features - features[i]).norm(dim=1))
    return chosen


class EmbeddingCoreset(Distiller):
    """Shared machinery of herding and k-center: per-class selection in a trained ConvNet's features."""

    Hparams = EmbeddingCoresetHparams

    def default_hparams(self, spec: DatasetSpec, ipc: int | None, preset: str) -> EmbeddingCoresetHparams:
        return EmbeddingCoresetHparams(feature_epochs=5 if preset == "paper" else 1)

    def check(self, spec: DatasetSpec, ipc: int | None) -> None:
        check_ipc(spec, ipc)

    def select(self, features: Tensor, k: int, rng: torch.Generator) -> list[int]:
        raise NotImplementedError

    def distill(self, task: DistillTask) -> Artifact:
        ensure_class_sizes(task)
        embeddings = training_split_embeddings(task.train, task.spec, task.hparams.feature_epochs, task.seed,
                                               task.device, task.cache_dir)
        rng = task.generator(f"{self.name}-start", device="cpu")
        per_class = []
        for c, features in enumerate(embeddings):
            order = self.select(features, task.ipc, rng)
            per_class.append(task.train.indices_of_class(c)[torch.tensor(order, device=task.train.labels.device)])
        return pixel_artifact_from_indices(task, per_class, {"feature_epochs": task.hparams.feature_epochs})


@register_distiller("herding")
class HerdingCoreset(EmbeddingCoreset):
    """Herding: real images whose embedding mean tracks the class mean (Welling 2009)."""

    def select(self, features: Tensor, k: int, rng: torch.Generator) -> list[int]:
        return herding_order(features, k)


@register_distiller("kcenter")
class KCenterCoreset(EmbeddingCoreset):
    """K-center greedy: real images covering the class in embedding space (Sener & Savarese 2018)."""

    def select(self, features: Tensor, k: int, rng: torch.Generator) -> list[int]:
        first = int(torch.randint(len(features), (1,), generator=rng))
        return kcenter_order(features, k, first)


class WholeDatasetArtifact(Artifact):
    """Stands for the real training set itself; nothing but a marker is stored."""

    serves_any_ipc = True

    def __init__(self, train) -> None:
        self.train = train

    def synthesize(self, ipc: int, seed: int) -> RealTrainingSet:
        return RealTrainingSet(self.train)

    def storage_bytes(self) -> int:
        return 0

    def save(self, path: Path) -> None:
        (path / "whole_dataset").write_text("the real training set; nothing to store\n")

    @classmethod
    def load(cls, path: Path, context: LoadContext) -> WholeDatasetArtifact:
        if not (path / "whole_dataset").is_file():
            raise BenchmarkError(f"{path}: not a whole-dataset artifact")
        return cls(context.train())

    def summary(self) -> dict:
        return {"images": len(self.train)}


@register_distiller("full")
class WholeDataset(Distiller):
    """The whole real training set (upper bound), trained for the protocol's full-data epochs."""

    serves_any_ipc = True
    ipc_independent = True

    def distill(self, task: DistillTask) -> Artifact:
        return WholeDatasetArtifact(task.train)
