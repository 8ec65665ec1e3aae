"""The local backend: every cell in this process, distillations first, with a progress bar.

Without the bar (``--no-progress``: batch jobs, logs) each cell gets a start and an end line instead, so a
log shows what runs and how long each cell took."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from tqdm import tqdm

from benchmark.backends import RunSummary, pending_or_done
from benchmark.cells import Plan
from benchmark.runner import RunContext, log_line, run_cell


@dataclass(frozen=True)
class LocalOptions:
    """The local backend has no options of its own (``--threads`` applies to every backend)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def options(args: argparse.Namespace) -> LocalOptions:
    return LocalOptions()


def preflight(options: LocalOptions) -> None:
    return None


def run(plan: Plan, ctx: RunContext, options: LocalOptions | None = None) -> RunSummary:
    summary = RunSummary()
    todo = pending_or_done(plan, ctx.store, summary)
    ordered = [cell for _, cells in todo.stages() for cell in cells]  # distillations first
    with tqdm(total=len(ordered), disable=not ctx.progress, unit="cell", dynamic_ncols=True) as bar:
        for position, cell in enumerate(ordered, start=1):
            where = f"cell {position}/{len(ordered)} {cell.label()}"
            bar.set_postfix_str(cell.label(), refresh=True)
            if not ctx.progress:
                log_line(f"{where}: started")
            start = time.perf_counter()
            outcome = run_cell(cell, ctx)
            summary.add(outcome)
            if not ctx.progress:
                detail = f": {outcome.message}" if outcome.message else ""
                log_line(f"{where}: {outcome.status} after {time.perf_counter() - start:.1f} s{detail}")
            bar.update(1)
    return summary
