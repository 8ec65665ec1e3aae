"""``python -m benchmark.run``: expand a grid into cells, run them on a backend, print the leaderboard.

Examples::

    python -m benchmark.run --grid smoke
    python -m benchmark.run --grid smoke --datasets npz:my.npz --methods random,herding --ipc 10
    python -m benchmark.run --grid paper --dry-run
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.backends.local import RunSummary, pending, run_local
from benchmark.cells import Plan, expand
from benchmark.cli import comma_list, default_threads, guarded
from benchmark.data import DataOptions
from benchmark.devices import resolve_device
from benchmark.errors import invalid_value
from benchmark.grid import load_grid
from benchmark.leaderboard import write_reports
from benchmark.protocol import get_protocol
from benchmark.runner import RunContext
from benchmark.store import ResultsStore

BACKENDS = ("local",)
DATA_ROOT_ENV = "D2M_BENCH_DATA"


@dataclass(frozen=True)
class RunOptions:
    """The command line, parsed into types once, at the edge."""

    grid: str
    backend: str
    results: Path
    device: str
    data: DataOptions
    axes: dict
    dry_run: bool
    progress: bool
    threads: int
    report: bool


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.run", description=__doc__.splitlines()[0])
    p.add_argument("--grid", default="smoke", help="built-in grid name or a grid .toml file (default: smoke)")
    p.add_argument("--backend", default="local", help=f"where cells run: {', '.join(BACKENDS)} (default: local)")
    p.add_argument("--results", default="results", help="results directory (default: results/)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--data-root", default=os.environ.get(DATA_ROOT_ENV, "data"),
                   help=f"where datasets live in their native layout (default: ${DATA_ROOT_ENV} or ./data)")
    p.add_argument("--download", action="store_true", help="download missing datasets (opt-in)")
    for axis, help_text in (("datasets", "dataset names, npz:PATH or folder:PATH"), ("methods", "method names"),
                            ("ipc", "images per class"), ("archs", "evaluation architectures"),
                            ("seeds", "distillation seeds")):
        p.add_argument(f"--{axis}", help=f"comma list replacing the grid's {axis}: {help_text}")
    p.add_argument("--dry-run", action="store_true", help="print the plan (cells per stage, already done) and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument("--no-report", action="store_true", help="do not regenerate the leaderboard at the end")
    return p


def parse_options(argv: list[str] | None) -> RunOptions:
    a = build_parser().parse_args(argv)
    if a.backend not in BACKENDS:
        raise invalid_value("--backend", a.backend, f"one of {', '.join(BACKENDS)}")
    threads = a.threads if a.threads is not None else default_threads()
    if threads < 1:
        raise invalid_value("--threads", threads, "a positive integer")
    axes = {"datasets": comma_list("--datasets", a.datasets), "methods": comma_list("--methods", a.methods),
            "ipc": comma_list("--ipc", a.ipc, int), "archs": comma_list("--archs", a.archs),
            "seeds": comma_list("--seeds", a.seeds, int)}
    return RunOptions(grid=a.grid, backend=a.backend, results=Path(a.results), device=a.device,
                      data=DataOptions(Path(a.data_root), a.download, str(resolve_device(a.device))), axes=axes,
                      dry_run=a.dry_run, progress=not a.no_progress, threads=threads, report=not a.no_report)


def describe_plan(plan: Plan, ctx: RunContext) -> str:
    distill, evals = pending(plan, ctx)
    protocol = get_protocol(plan.grid.protocol)
    return "\n".join([
        f"grid {plan.grid.name}: {plan.grid.description}",
        f"  datasets={','.join(plan.grid.datasets)} methods={','.join(plan.grid.methods)} "
        f"ipc={','.join(map(str, plan.grid.ipc))} archs={','.join(plan.grid.archs)} "
        f"seeds={','.join(map(str, plan.grid.seeds))} budget={plan.grid.budget}",
        f"  protocol {protocol.name}: {protocol.description}"
        + (f" [networks per artifact: {plan.grid.models}]" if plan.grid.models else ""),
        f"  stage distill: {len(plan.distill_cells)} cells, {len(plan.distill_cells) - len(distill)} already done",
        f"  stage eval:    {len(plan.eval_cells)} cells, {len(plan.eval_cells) - len(evals)} already done",
    ])


def run_plan(plan: Plan, ctx: RunContext, backend: str, show_progress: bool) -> RunSummary:
    """Run every stage of ``plan`` on ``backend``: the one place a command hands cells to a backend
    (``benchmark.run`` and ``benchmark.nas`` both come through here)."""
    if backend not in BACKENDS:
        raise invalid_value("--backend", backend, f"one of {', '.join(BACKENDS)}")
    return run_local(plan, ctx, show_progress=show_progress)


def report_failures(summary: RunSummary) -> None:
    if not summary.failed:
        return
    print(f"\n{len(summary.failed)} cell(s) failed (recorded under failures/; rerun to retry):", file=sys.stderr)
    for outcome in summary.failed:
        print(f"  {outcome.label}: {outcome.message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        options = parse_options(argv)
        torch.set_num_threads(options.threads)
        grid = load_grid(options.grid).with_axes(**options.axes)
        plan = expand(grid)
        ctx = RunContext(results=options.results, data=options.data, device=options.device, progress=options.progress)
        if options.dry_run:
            print(describe_plan(plan, ctx))
            return 0
        ResultsStore(options.results).ensure_writable()
        print(describe_plan(plan, ctx), flush=True)
        summary = run_plan(plan, ctx, options.backend, show_progress=options.progress)
        print(f"\ncells: {summary.done} run, {summary.skipped} already done, {len(summary.failed)} failed")
        if options.report:
            print(write_reports(options.results))
        report_failures(summary)
        return 1 if summary.failed else 0

    return guarded(body)


if __name__ == "__main__":
    sys.exit(main())
