"""``python -m benchmark.run``: expand a grid into cells, run them on a backend, print the leaderboard.

Examples::

    python -m benchmark.run --grid smoke
    python -m benchmark.run --grid smoke --datasets npz:my.npz --methods random,herding --ipc 10
    python -m benchmark.run --grid full --dry-run
    python -m benchmark.run --grid full --backend slurm --slurm-partition gpu --slurm-gpus 1 --no-wait
    python -m benchmark.run --grid full --backend ray --ray-address head-node:6379
    python -m benchmark.run --grid full --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT   # slurm/shard.sbatch
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.backends import BACKENDS, RunSummary, add_backend_arguments, backend_and_threads, backend_module
from benchmark.cells import Plan, expand
from benchmark.cli import comma_list, command_line, guarded
from benchmark.cost_model import GPU_SPEEDUP, REFERENCE_THREADS, estimate, format_hours
from benchmark.cuda_graphs import CUDA_GRAPHS, graphs_on
from benchmark.data import DataOptions
from benchmark.devices import resolve_device
from benchmark.distiller import PAPER_BUDGET
from benchmark.ensemble import SEEDS_TOGETHER
from benchmark.fast_embedding import AUTO_MIN_ITERATIONS, COMPILE, compile_wanted
from benchmark.grid import load_grid
from benchmark.leaderboard import write_reports
from benchmark.protocol import get_protocol
from benchmark.runner import RunContext
from benchmark.shards import parse_shard, shard_plan
from benchmark.store import ResultsStore

DATA_ROOT_ENV = "D2M_BENCH_DATA"


@dataclass(frozen=True)
class RunOptions:
    """The command line, parsed into types once, at the edge."""

    grid: str
    backend: str
    results: Path
    device: str
    seeds_together: str
    cuda_graphs: str
    compile: str
    data: DataOptions
    axes: dict
    settings: dict
    dry_run: bool
    progress: bool
    threads: int
    report: bool
    shard: tuple[int, int] | None
    backend_options: object


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.run", description=__doc__.splitlines()[0])
    p.add_argument("--grid", default="smoke", help="built-in grid name or a grid .toml file (default: smoke)")
    p.add_argument("--backend", default="local", help=f"where cells run: {', '.join(BACKENDS)} (default: local)")
    p.add_argument("--results", default="results", help="results directory (default: results/)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--seeds-together", default="auto", choices=SEEDS_TOGETHER,
                   help="train a set's evaluation networks as one stacked ensemble (auto: on CUDA; default: auto)")
    p.add_argument("--cuda-graphs", default="off", choices=CUDA_GRAPHS,
                   help="replay that ensemble's training steps as CUDA graphs (CUDA only; default: off)")
    p.add_argument("--compile", default="auto", choices=COMPILE,
                   help="run DM's embedding forwards through torch.compile (auto: on a CPU, for distillations of "
                        f">= {AUTO_MIN_ITERATIONS} iterations, when a C++ compiler is found; default: auto)")
    p.add_argument("--data-root", default=os.environ.get(DATA_ROOT_ENV, "data"),
                   help=f"where datasets live in their native layout (default: ${DATA_ROOT_ENV} or ./data)")
    p.add_argument("--download", action="store_true", help="download missing datasets (opt-in)")
    for axis, help_text in (("datasets", "dataset names, npz:PATH or folder:PATH"), ("methods", "method names"),
                            ("ipc", "images per class"), ("archs", "evaluation architectures"),
                            ("seeds", "distillation seeds")):
        p.add_argument(f"--{axis}", help=f"comma list replacing the grid's {axis}: {help_text}")
    p.add_argument("--budget", help="replace the grid's distillation budget preset (paper, cpu-small)")
    p.add_argument("--protocol", help="replace the grid's evaluation protocol (see python -m benchmark.list protocols)")
    p.add_argument("--models", type=int, help="replace the number of evaluation networks per distilled set")
    p.add_argument("--dry-run", action="store_true", help="print the plan (cells per stage, already done) and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument("--no-report", action="store_true", help="do not regenerate the leaderboard at the end")
    p.add_argument("--shard", help="run only share I of N of the grid (I/N, 0 <= I < N), e.g. one per SLURM array "
                                   "task; a shard runs its distillations, then their evaluations")
    add_backend_arguments(p)
    return p


def parse_options(argv: list[str] | None) -> RunOptions:
    a = build_parser().parse_args(argv)
    backend_options, threads = backend_and_threads(a)
    device = resolve_device(a.device)
    graphs_on(a.cuda_graphs, device)  # refuses --cuda-graphs on without CUDA, up front
    compile_wanted(a.compile, device, AUTO_MIN_ITERATIONS)  # refuses --compile on without a compiler, up front
    axes = {"datasets": comma_list("--datasets", a.datasets), "methods": comma_list("--methods", a.methods),
            "ipc": comma_list("--ipc", a.ipc, int), "archs": comma_list("--archs", a.archs),
            "seeds": comma_list("--seeds", a.seeds, int)}
    return RunOptions(grid=a.grid, backend=a.backend, results=Path(a.results), device=a.device,
                      seeds_together=a.seeds_together, cuda_graphs=a.cuda_graphs, compile=a.compile,
                      data=DataOptions(Path(a.data_root), a.download, str(device)), axes=axes,
                      settings={"budget": a.budget, "protocol": a.protocol, "models": a.models},
                      dry_run=a.dry_run, progress=not a.no_progress, threads=threads, report=not a.no_report,
                      shard=parse_shard(a.shard) if a.shard else None, backend_options=backend_options)


def describe_plan(plan: Plan, ctx: RunContext, device: str, threads: int = REFERENCE_THREADS) -> str:
    """The plan, stage by stage: cells, cells already done, and the estimated device-hours left. A CPU run on
    fewer threads than the reference says so: the estimate is for both cores, and this repository's records
    run on one thread, most beside another job, took 3.4x it in all (``benchmarks/cost_model_check.py``,
    2026-11-28)."""
    todo = plan.pending(ctx.store)
    left = estimate(todo)
    protocol = get_protocol(plan.grid.protocol)
    on = f"on a GPU assumed {GPU_SPEEDUP:g}x the 2-core reference CPU" if device == "cuda" else \
        "on the 2-core reference CPU"
    lines = [
        f"grid {plan.grid.name}: {plan.grid.description}",
        f"  datasets={','.join(plan.grid.datasets)} methods={','.join(plan.grid.methods)} "
        f"ipc={','.join(map(str, plan.grid.ipc))} archs={','.join(plan.grid.archs)} "
        f"seeds={','.join(map(str, plan.grid.seeds))} budget={plan.grid.budget}",
        f"  protocol {protocol.name}: {protocol.description}"
        + (f" [networks per artifact: {plan.grid.models}]" if plan.grid.models else "")
        + "".join(f" [{name}: {value}]" for name, value in plan.grid.protocol_overrides.items()),
    ]
    for (stage, cells), (_, pending) in zip(plan.stages(), todo.stages(), strict=True):
        lines.append(f"  stage {stage + ':':8} {len(cells)} cells, {len(cells) - len(pending)} already done, "
                     f"~{format_hours(left[stage].hours(device))} to go")
    regenerated = todo.regenerated(ctx.store)
    if regenerated:
        lines.append(f"  ({len(regenerated)} of the distillations to go have a record but no artifact here: "
                     "rerun to regenerate what the evaluations read, the record keeping the one it replaces)")
    uncalibrated = left["distill"].uncalibrated
    lines.append(f"  (an estimate {on}, from benchmark/cost_model.py; records keep the measured cost"
                 + (f"; uncalibrated methods costed like DM: {', '.join(sorted(uncalibrated))}" if uncalibrated else "")
                 + ")")
    if device == "cpu" and threads < REFERENCE_THREADS:
        lines.append(f"  (this run uses {threads} torch thread(s) of the reference's {REFERENCE_THREADS}: expect at "
                     f"least {REFERENCE_THREADS / threads:g}x the estimate, more beside other jobs; "
                     "python -m benchmarks.cost_model_check --results DIR measures the ratio on a store)")
    if device == "cpu" and plan.grid.budget == PAPER_BUDGET and todo.distill_cells:
        lines.append("  (budget paper is the references' full length, sized for a GPU: on a CPU, --budget cpu-small "
                     "runs the documented reduced presets)")
    if plan.unsupported:
        lines.append(f"  not served ({len(plan.unsupported)}, skip_unsupported): " + "; ".join(plan.unsupported[:5])
                     + (" ..." if len(plan.unsupported) > 5 else ""))
    return "\n".join(lines)


def run_plan(plan: Plan, ctx: RunContext, backend: str, backend_options: object) -> RunSummary:
    """Check the backend can run, then run every stage of ``plan`` on it: the one place a command hands
    cells to a backend (``benchmark.run`` and ``benchmark.nas`` both come through here)."""
    module = backend_module(backend)
    module.preflight(backend_options)
    ResultsStore(ctx.results).ensure_writable()
    return module.run(plan, ctx, backend_options)


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
        grid = load_grid(options.grid).with_axes(**options.axes).with_settings(**options.settings)
        plan = expand(grid)
        if options.shard:
            whole = len(plan)
            plan = shard_plan(plan, *options.shard)
            print(f"shard {options.shard[0]}/{options.shard[1]}: {len(plan)} of the grid's {whole} cells "
                  "(whole distillations with their evaluations)")
        ctx = RunContext(results=options.results, data=options.data, device=options.device, progress=options.progress,
                         seeds_together=options.seeds_together, cuda_graphs=options.cuda_graphs,
                         compile=options.compile,
                         command=command_line("benchmark.run", argv))
        device = options.data.device.split(":")[0]
        described = describe_plan(plan, ctx, device, options.threads)
        if options.dry_run:
            print(described)
            return 0
        print(described, flush=True)
        summary = run_plan(plan, ctx, options.backend, options.backend_options)
        print(f"\n{summary.line()}")
        if options.report:
            print(write_reports(options.results))
        report_failures(summary)
        return 1 if summary.failed else 0

    return guarded(body)


if __name__ == "__main__":
    sys.exit(main())
