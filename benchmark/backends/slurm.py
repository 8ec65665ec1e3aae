"""The SLURM backend: each stage of the plan is one submitit job array; the evaluation array starts after
the distillation array has ended (``--dependency=afterany``), which respects every edge of the DAG.

Every array task runs :func:`benchmark.runner.run_cell` on its cells, so the records are the ones the
other backends write. The task callable is ``submitit.helpers.Checkpointable``: a task that reaches its
time limit is requeued with the same cells; finished cells are skipped and a distillation resumes from
its checkpoint in ``work/``. A task that ends without writing its cells' records (``scancel``, out of
memory, a lost node) gets a failure record naming its log, and the rest of the grid goes on.

The driver keeps a ledger of what it submitted (``logs/slurm-jobs.jsonl``) and watches ``squeue`` and the
store, not submitit's job states: without SLURM accounting (``sacct``), as on the local test cluster,
submitit cannot tell a cancelled task from a running one. With ``--no-wait`` it returns after
submitting; a later run of the same command finds the cells still queued or running in the ledger,
does not submit them again, and collects them. Logs: ``results/logs/<array>/<array>_<task>_0_log.{out,err}``.
"""

from __future__ import annotations

import getpass
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
import torch
from tqdm import tqdm

from benchmark.backends import RunSummary, pending_or_done
from benchmark.backends.slurm_resources import SlurmOptions, StageResources, slurm_command
from benchmark.backends.slurm_resources import add_arguments as add_arguments
from benchmark.backends.slurm_resources import options as options
from benchmark.backends.slurm_resources import preflight as preflight
from benchmark.cells import DistillCell, EvalCell, Plan
from benchmark.errors import BenchmarkError
from benchmark.runner import CellOutcome, RunContext, now, record_lost, run_cell

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LEDGER = Path("logs") / "slurm-jobs.jsonl"
MAX_ARRAY_TASKS = 1000  # SLURM's default MaxArraySize is 1001
GRACE_POLLS = 2  # polls a finished task's cells may take to show their records on a network file system

Cell = DistillCell | EvalCell


class CellBatch(submitit.helpers.Checkpointable):
    """What one array task runs: its cells in order, with torch threads = the task's CPUs."""

    def __init__(self, ctx: RunContext, threads: int) -> None:
        self.ctx = ctx
        self.threads = threads

    def __call__(self, cells: list[Cell]) -> list[dict[str, str]]:
        torch.set_num_threads(self.threads)
        return [{"key": o.key, "status": o.status, "message": o.message} for o in map(self.run, cells)]

    def run(self, cell: Cell) -> CellOutcome:
        return run_cell(cell, self.ctx)
    # checkpoint(): submitit's default resubmits this callable with the same cells, which is all a
    # requeued task needs (done cells are skipped, distillations resume from work/<key>/).


@dataclass
class Task:
    """One task of the ledger: its SLURM id (``<array>_<index>``, or ``<job>`` when submitit submitted a
    one-task array as a plain job) and the keys of its cells."""

    task_id: str
    stage: str
    keys: list[str]


def read_ledger(results: Path) -> list[Task]:
    path = results / LEDGER
    tasks = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a driver killed mid-line: that submission is not ours to track
            continue
        tasks += [Task(task_id, entry["stage"], keys)
                  for task_id, keys in zip(entry["ids"], entry["tasks"], strict=True)]
    return tasks


def append_ledger(results: Path, ids: list[str], stage: str, chunks: list[list[Cell]]) -> None:
    path = results / LEDGER
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"array": ids[0].split("_")[0], "stage": stage, "submitted": now(), "ids": ids,
                       "tasks": [[c.key for c in chunk] for chunk in chunks]}) + "\n"
    with open(path, "a") as fh:  # one write(): lines of concurrent drivers do not interleave
        fh.write(line)


def live_tasks() -> set[str]:
    """Ids of this user's jobs and array tasks that are pending, running or completing."""
    out = slurm_command("squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i")
    return {line.strip() for line in out.splitlines() if line.strip()}


def chunked(cells: list[Cell], per_job: int) -> list[list[Cell]]:
    per_job = max(per_job, math.ceil(len(cells) / MAX_ARRAY_TASKS))
    return [cells[i:i + per_job] for i in range(0, len(cells), per_job)]


def submit_stage(stage: str, cells: list[Cell], ctx: RunContext, request: StageResources, opts: SlurmOptions,
                 after: list[str], grid: str) -> tuple[list[str], list[list[Cell]]]:
    """Submit one job array for ``cells``; returns the ids of its tasks and the cells of each."""
    logging.getLogger("submitit").setLevel(logging.ERROR)  # no sacct here: it would warn on every poll
    chunks = chunked(cells, request.cells_per_job)
    executor = submitit.AutoExecutor(folder=str((ctx.results / "logs" / "%A").resolve()), cluster="slurm")
    extra: dict[str, Any] = {}
    if after:
        extra["dependency"] = "afterany:" + ":".join(sorted(after))
    if request.account:
        extra["account"] = request.account
    if request.qos:
        extra["qos"] = request.qos
    executor.update_parameters(
        name=f"d2m-{grid}-{stage}", timeout_min=request.time_min, cpus_per_task=request.cpus,
        mem_gb=request.mem_gb, gpus_per_node=request.gpus, slurm_partition=request.partition,
        slurm_array_parallelism=opts.array_parallelism, slurm_additional_parameters=extra,
        # a task is warned this long before its limit: time to checkpoint and requeue
        slurm_signal_delay_s=max(15, min(120, request.time_min * 6)),
        slurm_setup=[f"export PYTHONPATH={PROJECT_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}",
                     f"export OMP_NUM_THREADS={request.cpus}"],
    )
    try:
        jobs = executor.map_array(CellBatch(ctx, request.cpus), chunks)
    except Exception as e:  # sbatch said no (an account or QOS it does not know, a limit): nothing queued
        raise BenchmarkError(f"--backend slurm: sbatch refused the {stage} array: "
                             f"{' '.join(str(e).split())[:300]}") from None
    ids = [str(job.job_id) for job in jobs]
    append_ledger(ctx.results, ids, stage, chunks)
    return ids, chunks


def log_hint(results: Path, task_id: str) -> str:
    """submitit's ``<folder>/%j_%t_log.err`` with the folder ``logs/%A``."""
    return str(results / "logs" / task_id.split("_")[0] / f"{task_id}_0_log.err")


def wait(tracked: dict[str, tuple[Cell, str]], ctx: RunContext, opts: SlurmOptions) -> list[CellOutcome]:
    """Poll squeue and the store until every tracked cell has a record or a failure, with a progress bar.
    ``tracked`` maps a cell key to (cell, the task running it)."""
    store, outcomes = ctx.store, {}
    grace: dict[str, int] = {}
    with tqdm(total=len(tracked), disable=not ctx.progress, unit="cell", dynamic_ncols=True) as bar:
        while len(outcomes) < len(tracked):
            live = live_tasks()
            for key, (cell, task_id) in tracked.items():
                if key in outcomes:
                    continue
                stage = "distill" if isinstance(cell, DistillCell) else "eval"
                if store.is_done(stage, key):
                    outcomes[key] = CellOutcome(key, stage, cell.label(), "done")
                elif task_id not in live:
                    grace[key] = grace.get(key, 0) + 1
                    failure = store.read_failure(key)
                    if failure:
                        outcomes[key] = CellOutcome(key, stage, cell.label(), "failed", failure.get("error", ""))
                    elif grace[key] > GRACE_POLLS:
                        outcomes[key] = record_lost(cell, ctx, f"SLURM task {task_id} ended without a result "
                                                               "(cancelled, out of memory, timed out too often or "
                                                               f"node failure); see {log_hint(ctx.results, task_id)}")
                if key in outcomes:
                    bar.update(1)
            bar.set_postfix_str(f"{len(live & {t for _, t in tracked.values()})} tasks queued or running")
            if len(outcomes) < len(tracked):
                time.sleep(opts.poll_seconds)
    return list(outcomes.values())


def run(plan: Plan, ctx: RunContext, opts: SlurmOptions) -> RunSummary:
    summary = RunSummary()
    todo = pending_or_done(plan, ctx.store, summary)
    if not len(todo):
        return summary
    live = live_tasks()
    in_flight = {key: t for t in read_ledger(ctx.results) if t.task_id in live for key in t.keys}
    after_distill = sorted({t.task_id.split("_")[0] for t in in_flight.values() if t.stage == "distill"})
    tracked: dict[str, tuple[Cell, str]] = {}
    for stage, cells in todo.stages():
        running = [c for c in cells if c.key in in_flight]
        tracked.update({c.key: (c, in_flight[c.key].task_id) for c in running})
        fresh = [c for c in cells if c.key not in in_flight]
        if running:
            print(f"{stage}: {len(running)} cell(s) still queued or running from an earlier submission", flush=True)
        if not fresh:
            continue
        ids, chunks = submit_stage(stage, fresh, ctx, opts.stages[stage], opts,
                                   after_distill if stage == "eval" else [], plan.grid.name)
        tracked.update({c.key: (c, task_id) for task_id, chunk in zip(ids, chunks, strict=True) for c in chunk})
        array = ids[0].split("_")[0]
        print(f"{stage}: submitted job array {array} ({len(chunks)} tasks, {len(fresh)} cells"
              + (f", after {','.join(after_distill)}" if stage == "eval" and after_distill else "")
              + f"; each {opts.stages[stage].describe()}); logs in {ctx.results / 'logs' / array}", flush=True)
        if stage == "distill":
            after_distill = sorted({*after_distill, array})
    if not opts.wait:
        print(f"--no-wait: {len(tracked)} cell(s) submitted or in flight; rerun the same command to collect them")
        return summary
    for outcome in wait(tracked, ctx, opts):
        summary.add(outcome)
    return summary
