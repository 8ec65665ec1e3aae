"""Networks trained on the real data with their weights kept along the way, cached and shared.

Two methods need them: MTT's *expert buffer* (GeorgeCazenavette/mtt-distillation ``buffer.py``: ConvNets
trained with plain SGD, parameters saved after every epoch) and DiM's *models pool* (vimar-gu/DiM
``pool_match.py::train_match_model``: networks of several architectures trained on real batches while the
generator is matched). A :class:`TrainingRecipe` says how one network is trained and at which optimizer
steps its weights are kept; a :class:`Trajectory` holds those snapshots.

Trajectories are the expensive, reusable stage of these methods, so each is cached as one checksummed
file under the store's cache directory, keyed by the dataset, the whole recipe and the trajectory's index
— never by the distillation seed — so every seed and IPC of a grid shares them, an interrupted build keeps
the trajectories it finished, and a missing or corrupt file is rebuilt, or reported in one line when the
caller requires a ready cache. Each file records the seconds it took to build, so a method can report the
stage's full cost even when it only reused it.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.augment import diffaug, dsa
from benchmark.blocking import backward_in_pieces
from benchmark.checkpoints import cache_entry, load_or_build
from benchmark.data.images import LabelledImages
from benchmark.errors import BenchmarkError, invalid_value
from benchmark.matching import mixes_batch
from benchmark.models import build_model
from benchmark.seeding import derive_seed, generator

AUGMENT_MODES = ("dsa", "diffaug")


@dataclass(frozen=True)
class TrainingRecipe:
    """How one network is trained on the real training split, and when its weights are kept.

    ``snapshot_steps`` are optimizer-step counts (0 = the initialisation); training stops at the last.
    ``augment_mode`` is ``dsa`` (one DSA family per batch, as MTT's experts) or ``diffaug`` (DiM's chain),
    both with per-image magnitudes. ``inputs`` names the input space (e.g. a ZCA whitening) for the key.
    """

    arch: str
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    augmentation: str
    snapshot_steps: tuple[int, ...]
    augment_mode: str = "dsa"
    inputs: str = "normalised"

    def __post_init__(self) -> None:
        steps = self.snapshot_steps
        if not steps or list(steps) != sorted(set(steps)) or steps[0] < 0:
            raise invalid_value("snapshot_steps", steps, "a non-empty increasing list of non-negative step counts")
        if self.augment_mode not in AUGMENT_MODES:
            raise invalid_value("augment_mode", self.augment_mode, f"one of {', '.join(AUGMENT_MODES)}")
        if self.batch_size < 1 or not self.lr > 0:
            raise invalid_value("trajectory batch_size/lr", (self.batch_size, self.lr), "positive values")


@dataclass
class Trajectory:
    """Snapshots of one network: every state-dict entry stacked over the kept steps."""

    steps: tuple[int, ...]
    snapshots: dict[str, Tensor]  # name → (len(steps), *shape)
    seconds: float

    def __len__(self) -> int:
        return len(self.steps)

    def state_dict(self, i: int) -> dict[str, Tensor]:
        """The i-th snapshot as a state dict (views, no copies)."""
        return {name: stacked[i] for name, stacked in self.snapshots.items()}

    def parameter_vectors(self, net: nn.Module) -> Tensor:
        """(snapshots, P): the parameters of ``net``'s architecture, flattened in ``net.parameters()`` order."""
        return torch.cat([self.snapshots[name].flatten(1) for name, _ in net.named_parameters()], dim=1)

    def trimmed(self, count: int) -> Trajectory:
        """The first ``count`` snapshots (what a method needs of a long trajectory)."""
        return Trajectory(self.steps[:count], {k: v[:count].clone() for k, v in self.snapshots.items()}, self.seconds)


def _snapshot(net: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def train_trajectory(train: LabelledImages, recipe: TrainingRecipe, seed: int, device: torch.device) -> Trajectory:
    """Train one ``recipe.arch`` network on ``train`` with SGD, keeping its weights at ``recipe.snapshot_steps``.

    Each step runs in cache-sized pieces on a CPU where the network does not mix a batch's images
    (:mod:`benchmark.blocking`: the whole batch's gradient up to float rounding)."""
    start = time.perf_counter()
    net = build_model(recipe.arch, train.spec, seed=derive_seed(seed, "trajectory-init"), device=device).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    rng = generator(seed, "trajectory-batches", device=device)
    kept = [_snapshot(net)] if recipe.snapshot_steps[0] == 0 else []
    wanted, last, step = set(recipe.snapshot_steps), recipe.snapshot_steps[-1], 0
    split = not mixes_batch(net)
    while step < last:
        for x, y in train.batches(recipe.batch_size, rng):
            x = x.to(device)
            if recipe.augment_mode == "dsa":
                x = dsa(x, recipe.augmentation, rng)
            else:
                x = diffaug(x, recipe.augmentation, rng)
            optimizer.zero_grad(set_to_none=True)
            backward_in_pieces(net, F.cross_entropy, x, y.to(device), split, bf16=False)
            optimizer.step()
            step += 1
            if step in wanted:
                kept.append(_snapshot(net))
            if step == last:
                break
    snapshots = {name: torch.stack([s[name] for s in kept]) for name in kept[0]}
    return Trajectory(tuple(recipe.snapshot_steps), snapshots, time.perf_counter() - start)


def trajectory_dir(cache_dir: Path, train: LabelledImages, recipe: TrainingRecipe, kind: str) -> Path:
    """Where the trajectories of (dataset, recipe) live: one folder, one checksummed file per index."""
    return cache_entry(cache_dir, kind, train.spec, {"n": len(train), "recipe": dataclasses.asdict(recipe)}, suffix="")


def cached_trajectories(train: LabelledImages, recipe: TrainingRecipe, count: int, cache_dir: Path,
                        device: torch.device, kind: str = "trajectories", require: bool = False,
                        keep: int | None = None,
                        log: Callable[[str], None] = lambda message: None) -> tuple[list[Trajectory], dict[str, Any]]:
    """``count`` trajectories of ``recipe`` on ``train``, built where absent or corrupt (or, with ``require``,
    a one-line error), with a report of what was built and what the whole stage cost.

    ``keep`` trims each loaded trajectory to its first snapshots, so a method holds only what it uses."""
    folder = trajectory_dir(cache_dir, train, recipe, kind)
    trajectories, built, seconds_now, waited = [], 0, 0.0, 0.0

    def build(index: int, path: Path) -> dict[str, Any]:
        if require:
            raise BenchmarkError(f"{kind} {path} is missing or corrupt and a ready cache was required; run once "
                                 "without requiring it to build it")
        log(f"{kind}: training {recipe.arch} trajectory {index + 1} of {count} into {folder}")
        made = train_trajectory(train, recipe, derive_seed(folder.name, index), device)
        return {"steps": list(made.steps), "snapshots": made.snapshots, "seconds": made.seconds}

    for index in range(count):
        path = folder / f"{index:04d}.pt"
        saved, built_now, waited_now = load_or_build(path, functools.partial(build, index, path), "cpu",
                                                     f"{kind} cache")
        trajectory = Trajectory(tuple(saved["steps"]), saved["snapshots"], float(saved["seconds"]))
        waited += waited_now
        if built_now:
            built, seconds_now = built + 1, seconds_now + trajectory.seconds
        trajectories.append(trajectory if keep is None else trajectory.trimmed(keep))
    report = {"cache": str(folder), "trajectories": count, "built_now": built, "reused": count - built,
              "build_seconds_now": round(seconds_now, 3), "waited_seconds": round(waited, 3),
              "build_seconds_total": round(sum(t.seconds for t in trajectories), 3)}
    return trajectories, report
