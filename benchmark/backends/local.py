"""The local backend: every cell in this process, distillations first, with a progress bar."""

from __future__ import annotations

from dataclasses import dataclass, field

from tqdm import tqdm

from benchmark.cells import Plan
from benchmark.runner import CellOutcome, RunContext, run_cell


@dataclass
class RunSummary:
    done: int = 0
    skipped: int = 0
    failed: list[CellOutcome] = field(default_factory=list)

    def add(self, outcome: CellOutcome) -> None:
        if outcome.status == "done":
            self.done += 1
        elif outcome.status == "skipped":
            self.skipped += 1
        else:
            self.failed.append(outcome)


def pending(plan: Plan, ctx: RunContext) -> tuple[list, list]:
    """The cells of each stage without a record (each cell's record lives in its own ``stage`` folder)."""
    store = ctx.store
    done = {stage: store.done_keys(stage) for stage in {c.stage for cells in plan.stages() for c in cells}}
    distill, evals = ([c for c in cells if c.key not in done[c.stage]] for cells in plan.stages())
    return distill, evals


def run_local(plan: Plan, ctx: RunContext, show_progress: bool = True) -> RunSummary:
    summary = RunSummary()
    distill, evals = pending(plan, ctx)
    summary.skipped = len(plan.distill_cells) + len(plan.eval_cells) - len(distill) - len(evals)
    with tqdm(total=len(distill) + len(evals), disable=not show_progress, unit="cell", dynamic_ncols=True) as bar:
        for cell in [*distill, *evals]:
            bar.set_postfix_str(cell.label(), refresh=True)
            summary.add(run_cell(cell, ctx))
            bar.update(1)
    return summary
