"""Backends run a plan's cells stage by stage: in this process, on Ray Tune, or as SLURM job arrays.

Every backend calls :func:`benchmark.runner.run_cell` for each cell, wherever it runs, so the records
are the same whichever backend wrote them. A backend module exposes ``add_arguments(parser)`` (its own
``--ray-*``/``--slurm-*`` flags), ``options(args)`` (those flags as a typed config), ``preflight(options)``
(a one-line error, before anything is written or submitted, when the cluster cannot be reached or cannot
give what is asked) and ``run(plan, ctx, options) -> RunSummary``; :data:`BACKENDS` names them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from benchmark.runner import CellOutcome

BACKENDS = {"local": "benchmark.backends.local", "ray": "benchmark.backends.raytune",
            "slurm": "benchmark.backends.slurm"}


def backend_module(name: str) -> ModuleType:
    return importlib.import_module(BACKENDS[name])


@dataclass
class RunSummary:
    """What a run did: cells it finished, found done, left to another live run, and the failures."""

    done: int = 0
    skipped: int = 0
    busy: int = 0
    failed: list[CellOutcome] = field(default_factory=list)

    def add(self, outcome: CellOutcome) -> None:
        if outcome.status == "done":
            self.done += 1
        elif outcome.status == "skipped":
            self.skipped += 1
        elif outcome.status == "busy":
            self.busy += 1
        else:
            self.failed.append(outcome)

    def line(self) -> str:
        busy = f", {self.busy} left to another run in progress" if self.busy else ""
        return f"cells: {self.done} run, {self.skipped} already done, {len(self.failed)} failed{busy}"
