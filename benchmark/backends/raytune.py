"""The Ray Tune backend: each stage of the plan is one ``Tuner`` whose trials are that stage's cells.

Running the distillation stage to completion before the evaluation stage respects every edge of the
plan's DAG. Each trial calls :func:`benchmark.runner.run_cell`, so it writes the same record to the same
store as the other backends, and it reports the outcome to Tune as well (status, mean accuracy).

Resources are asked per trial with ``tune.with_resources``: CPUs by dataset family (JPEG-decoding
ImageNet cells get more), torch threads set to those CPUs, and on clusters with GPUs a *fraction* of a
card sized by stage and family, so that several small evaluations share one card. Actors are reused
between trials (``reuse_actors``: each new actor re-imports torch, which halved a 4-trial grid's time,
../shared/notes/infra.md §1). ``--ray-address`` joins an existing cluster; without it a local one is
started for the run and stopped after it: no dashboard, quiet logs, token auth and telemetry off, a
small object store (cells move only keys and small configs), Tune's files under ``results/logs/ray``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from benchmark.backends import RunSummary, pending_or_done
from benchmark.cells import DistillCell, EvalCell, Plan
from benchmark.cli import default_threads
from benchmark.data import dataset_spec
from benchmark.distiller import get_distiller
from benchmark.errors import BenchmarkError, invalid_value
from benchmark.runner import CellOutcome, RunContext, record_lost, run_cell

# Set before ``import ray``: Ray 2.60 otherwise enables token auth (and writes ~/.ray/auth_token) and
# tries to send usage statistics on every fresh machine.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AIR_NEW_OUTPUT": "0"}
OBJECT_STORE_BYTES = 256 * 1024**2
CONNECT_TIMEOUT_S = 5.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Share of one GPU per trial, by stage and dataset family: an evaluation of a 10-image-per-class set at
# 32 px leaves a card mostly idle, a 128 px distillation fills one.
GPU_SHARE = {
    "distill": {"digits": 0.25, "mnist": 0.5, "cifar": 0.5, "tiny": 1.0, "imagenet-subset": 1.0, "imagenet": 1.0},
    "eval": {"digits": 0.1, "mnist": 0.25, "cifar": 0.25, "tiny": 0.5, "imagenet-subset": 0.5, "imagenet": 1.0},
}
# Minimum CPUs per trial by family: ImageNet-1K streams JPEGs, the subsets decode at 128 px.
MIN_CPUS = {"imagenet": 4, "imagenet-subset": 2}


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None
    cpus_per_trial: int = 1
    max_concurrent: int = 0  # 0: as many as the cluster's resources allow


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("--backend ray")
    g.add_argument("--ray-address", help="join this Ray cluster (host:port, ray://host:port or auto); "
                                         "default: start a local one for this run")
    g.add_argument("--ray-cpus-per-trial", type=int, default=1, help="CPUs (and torch threads) per cell (default 1)")
    g.add_argument("--ray-max-concurrent", type=int, default=0, help="at most this many cells at once (default: "
                                                                      "as resources allow)")


def options(args: argparse.Namespace) -> RayOptions:
    if args.ray_cpus_per_trial < 1:
        raise invalid_value("--ray-cpus-per-trial", args.ray_cpus_per_trial, "a positive integer")
    if args.ray_max_concurrent < 0:
        raise invalid_value("--ray-max-concurrent", args.ray_max_concurrent, "0 (no limit) or a positive integer")
    return RayOptions(args.ray_address, args.ray_cpus_per_trial, args.ray_max_concurrent)


# --- the cluster -------------------------------------------------------------------------------------

def check_reachable(address: str) -> None:
    """Fail in seconds, with one line, when nothing listens at ``host:port`` (ray.init would retry for long)."""
    if address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise invalid_value("--ray-address", address, "host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise BenchmarkError(f"--ray-address {address}: no Ray cluster reachable ({e.strerror or e}); start one "
                             "with `ray start --head` or leave out --ray-address for a local one") from None


def preflight(opts: RayOptions) -> None:
    if opts.address:
        check_reachable(opts.address)


def connect(opts: RayOptions) -> Any:
    """Join ``opts.address`` or start a local cluster; returns the ``ray`` module."""
    for name, value in RAY_ENV.items():
        os.environ.setdefault(name, value)
    import ray

    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    common = {"log_to_driver": False, "logging_level": logging.ERROR,
              "runtime_env": {"env_vars": {**RAY_ENV, "PYTHONPATH": pythonpath}}}
    try:
        if opts.address:
            ray.init(address=opts.address, **common)
        else:
            ray.init(num_cpus=default_threads(), include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
                     **common)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"--ray-address {opts.address}" if opts.address else "local Ray cluster"
        raise BenchmarkError(f"{where}: could not connect ({' '.join(str(e).split())[:200]})") from None
    return ray


def trial_resources(cell: DistillCell | EvalCell, opts: RayOptions, node_cpus: int, cluster_gpus: float) -> dict:
    """CPUs and GPU share of one cell (see :data:`GPU_SHARE` and :data:`MIN_CPUS`)."""
    distill = cell if isinstance(cell, DistillCell) else cell.distill
    family = dataset_spec(distill.dataset).family
    whole_data = isinstance(cell, EvalCell) and get_distiller(distill.method).ipc_independent
    stage = "distill" if isinstance(cell, DistillCell) or whole_data else "eval"
    cpus = min(max(opts.cpus_per_trial, MIN_CPUS.get(family, 1)), node_cpus)
    gpu = GPU_SHARE[stage].get(family, 1.0) if cluster_gpus > 0 else 0.0
    return {"CPU": cpus, "GPU": gpu}


# --- the trials --------------------------------------------------------------------------------------

def run_trial(config: dict, cells: list, ctx: RunContext) -> None:
    """One Tune trial: one cell, with torch threads equal to the CPUs Ray assigned to the trial."""
    import ray
    from ray import tune

    assigned = ray.get_runtime_context().get_assigned_resources()
    torch.set_num_threads(max(1, int(assigned.get("CPU", 1))))
    outcome = run_cell(cells[config["cell"]], ctx)
    accuracy = (outcome.record or {}).get("result", {}).get("mean", math.nan)
    tune.report({"status": outcome.status, "key": outcome.key, "accuracy": accuracy, "message": outcome.message})


def run_stage(ray: Any, stage: str, cells: list, ctx: RunContext, opts: RayOptions) -> list[CellOutcome]:
    from ray import tune

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    node_cpus = int(max((n.get("CPU", 1) for n in nodes), default=1))
    gpus = ray.cluster_resources().get("GPU", 0)

    def resources(config: dict) -> tune.PlacementGroupFactory:
        return tune.PlacementGroupFactory([trial_resources(cells[config["cell"]], opts, node_cpus, gpus)])

    trainable = tune.with_resources(tune.with_parameters(run_trial, cells=cells, ctx=ctx), resources)
    bar = tqdm(total=len(cells), disable=not ctx.progress, unit="cell", desc=stage, dynamic_ncols=True)

    class Progress(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            bar.update(1)

        on_trial_error = on_trial_complete

    tuner = tune.Tuner(
        trainable,
        param_space={"cell": tune.grid_search(list(range(len(cells))))},
        tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=opts.max_concurrent or None),
        run_config=tune.RunConfig(name=f"{stage}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}", verbose=0,
                                  storage_path=str((ctx.results / "logs" / "ray").resolve()), callbacks=[Progress()]),
    )
    with bar:
        grid = tuner.fit()
    outcomes = []
    for result in grid:
        cell = cells[result.config["cell"]]
        if result.error is None:
            m = result.metrics
            outcomes.append(CellOutcome(m["key"], stage, cell.label(), m["status"], m.get("message", "")))
        else:  # the trial's process died (out of memory, node lost): run_cell could not record it
            outcomes.append(record_lost(cell, ctx, f"Ray trial died: {type(result.error).__name__}: "
                                                          f"{' '.join(str(result.error).split())[:300]}"))
    return outcomes


def run(plan: Plan, ctx: RunContext, opts: RayOptions) -> RunSummary:
    summary = RunSummary()
    todo = pending_or_done(plan, ctx.store, summary)
    if not len(todo):
        return summary
    ray = connect(opts)
    try:
        for stage, cells in todo.stages():
            if cells:
                for outcome in run_stage(ray, stage, cells, ctx, opts):
                    summary.add(outcome)
    finally:
        ray.shutdown()
    return summary
