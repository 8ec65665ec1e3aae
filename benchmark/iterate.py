"""The outer loop every iterative method runs: progress, loss log, checkpoints, resume, NaN detection.

State (models, optimizers, learnable tensors, random generators) is checkpointed to the task's work
directory every ``checkpoint_every`` iterations through :mod:`benchmark.checkpoints`; a rerun of a killed
cell resumes from the last checkpoint with the same random streams, so it ends where an uninterrupted run
would. A non-finite loss stops the loop with :class:`DivergedError` naming the iteration; the last good
checkpoint stays on disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from benchmark.checkpoints import load_checked, save_checked
from benchmark.errors import BenchmarkError

CHECKPOINT = "checkpoint.pt"


class DivergedError(BenchmarkError):
    """The loss became NaN or infinite."""


@dataclass
class LoopReport:
    iterations: int
    resumed_from: int
    losses: list[tuple[int, float]] = field(default_factory=list)

    @property
    def first_loss(self) -> float | None:
        return self.losses[0][1] if self.losses else None

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None

    def summary(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "resumed_from": self.resumed_from, "first_loss": self.first_loss,
                "last_loss": self.last_loss, "loss_log": self.losses}


def _state_of(obj: Any) -> Any:
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    return obj.state_dict()


def _restore(obj: Any, state: Any) -> None:
    if isinstance(obj, torch.Generator):
        obj.set_state(state)
    elif isinstance(obj, torch.Tensor):
        with torch.no_grad():
            obj.copy_(state.to(obj.device))
    else:
        obj.load_state_dict(state)


def run_iterations(total: int, step: Callable[[int], float], state: dict[str, Any], work_dir: Path,
                   checkpoint_every: int = 100, log_every: int = 10, progress: bool = False,
                   desc: str = "distill") -> LoopReport:
    """Call ``step(it)`` for ``it`` in [start, total), where start comes from a checkpoint if there is one."""
    path = work_dir / CHECKPOINT
    saved = load_checked(path, "cpu", "checkpoint")
    start, losses = 0, []
    if saved is not None and set(saved.get("state", {})) == set(state):
        for name, obj in state.items():
            _restore(obj, saved["state"][name])
        start, losses = int(saved["iteration"]), [tuple(x) for x in saved["losses"]]
    report = LoopReport(iterations=start, resumed_from=start, losses=losses)
    with tqdm(total=total, initial=start, desc=desc, disable=not progress, leave=False, dynamic_ncols=True) as bar:
        for it in range(start, total):
            loss = float(step(it))
            if not math.isfinite(loss):
                kept = f"; the last good checkpoint is {path}" if path.is_file() else ""
                raise DivergedError(f"{desc}: loss is {loss} at iteration {it}{kept}")
            if it % log_every == 0 or it == total - 1:
                report.losses.append((it, loss))
                bar.set_postfix(loss=f"{loss:.4g}")
            report.iterations = it + 1
            bar.update(1)
            if (it + 1) % checkpoint_every == 0 and it + 1 < total:
                save_checked({"iteration": it + 1, "losses": report.losses,
                              "state": {name: _state_of(obj) for name, obj in state.items()}}, path)
    return report
