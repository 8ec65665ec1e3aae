"""Backends run a plan's cells stage by stage: in this process, on Ray Tune, or as SLURM job arrays.

Every backend calls :func:`benchmark.runner.run_cell` for each cell, wherever it runs, so the records
are the same whichever backend wrote them. A backend module exposes ``add_arguments(parser)`` (its own
``--ray-*``/``--slurm-*`` flags), ``options(args)`` (those flags as a typed config), ``preflight(options)``
(a one-line error, before anything is written or submitted, when the cluster cannot be reached or cannot
give what is asked) and ``run(plan, ctx, options) -> RunSummary``; :data:`BACKENDS` names them. The flags and
options may live in a lighter module (:data:`OPTION_MODULES`), so parsing imports no cluster package.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from benchmark.cli import default_threads
from benchmark.errors import BenchmarkError, invalid_value
from benchmark.runner import CellOutcome

if TYPE_CHECKING:
    from benchmark.cells import Plan
    from benchmark.store import ResultsStore

BACKENDS = {"local": "benchmark.backends.local", "ray": "benchmark.backends.raytune",
            "slurm": "benchmark.backends.slurm"}
# Where each backend's flags live (``add_arguments``, ``options``): modules that import no cluster package, so
# every command parses on a machine without submitit or Ray as long as it does not choose that backend.
OPTION_MODULES = {"local": "benchmark.backends.local", "ray": "benchmark.backends.raytune",
                  "slurm": "benchmark.backends.slurm_resources"}
NEEDS = {"ray": "ray[tune]", "slurm": "submitit"}  # the package a backend's run module cannot import without


def backend_module(name: str) -> ModuleType:
    """The module that runs ``name``'s cells; a missing cluster package is a one-line error naming it."""
    try:
        return importlib.import_module(BACKENDS[name])
    except ModuleNotFoundError as error:
        package = NEEDS.get(name, error.name)
        raise BenchmarkError(f"--backend {name} needs the package {package}, which is not installed here "
                             f"({error}); pip install {package}") from None


def options_module(name: str) -> ModuleType:
    """The module holding ``name``'s flags and options (``add_arguments``, ``options``): no cluster package."""
    return importlib.import_module(OPTION_MODULES[name])


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Every backend's ``--ray-*``/``--slurm-*`` flags, without importing any cluster package."""
    for name in BACKENDS:
        options_module(name).add_arguments(parser)


def backend_and_threads(args: argparse.Namespace) -> tuple[Any, int]:
    """The chosen backend's typed options and the torch thread count, from a command's parsed ``--backend``,
    backend flags and ``--threads``; a bad value is a one-line error naming the flag."""
    if args.backend not in BACKENDS:
        raise invalid_value("--backend", args.backend, f"one of {', '.join(BACKENDS)}")
    threads = args.threads if args.threads is not None else default_threads()
    if threads < 1:
        raise invalid_value("--threads", threads, "a positive integer")
    return options_module(args.backend).options(args), threads


def pending_or_done(plan: Plan, store: ResultsStore, summary: RunSummary) -> Plan:
    """The plan's cells without a record; the others are counted in ``summary`` as already done."""
    todo = plan.pending(store)
    summary.skipped = len(plan) - len(todo)
    return todo


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
