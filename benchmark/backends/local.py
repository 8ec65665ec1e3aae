"""The local backend: every cell in this process, distillations first, with a progress bar."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from tqdm import tqdm

from benchmark.backends import RunSummary, pending_or_done
from benchmark.cells import Plan
from benchmark.runner import RunContext, run_cell


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
    with tqdm(total=len(todo), disable=not ctx.progress, unit="cell", dynamic_ncols=True) as bar:
        for _, cells in todo.stages():
            for cell in cells:
                bar.set_postfix_str(cell.label(), refresh=True)
                summary.add(run_cell(cell, ctx))
                bar.update(1)
    return summary
