"""Run one cell in this process: distil and store an artifact, or evaluate one and store the accuracies.

Both functions are what every backend calls (locally, inside a Ray trial, or in a SLURM job), so a
record is the same whichever backend produced it. A cell whose record exists is skipped; a cell that
another live process is computing (its lock is held) is left to it ("busy"); a failing cell writes a
failure record (one-line reason plus the traceback) and never raises, so the grid goes on; an
interrupted cell writes nothing. An evaluation waits for its distillation's lock, so it never reads an
artifact that a concurrent run is still producing.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from benchmark.cells import DistillCell, EvalCell
from benchmark.costs import measure
from benchmark.data import DataOptions, Dataset, load_dataset
from benchmark.devices import resolve_device
from benchmark.distiller import Budget, DistillTask, LoadContext, get_distiller
from benchmark.errors import BenchmarkError
from benchmark.evaluate import evaluate
from benchmark.protocol import EvalProtocol
from benchmark.provenance import provenance
from benchmark.seeding import derive_seed
from benchmark.store import ResultsStore


@dataclass(frozen=True)
class RunContext:
    """Where results go and how cells run; plain data, so it travels to Ray actors and SLURM jobs."""

    results: Path
    data: DataOptions = field(default_factory=DataOptions)
    device: str = "auto"
    progress: bool = False
    seeds_together: str = "auto"  # K evaluation networks as one stacked ensemble (benchmark.ensemble)
    cuda_graphs: str = "off"  # that ensemble's steps replayed as CUDA graphs (benchmark.cuda_graphs)
    compile: str = "auto"  # DM's embedding forwards through torch.compile (benchmark.fast_embedding)
    command: str = ""  # the command line that launched the run, kept in every record it writes

    @property
    def store(self) -> ResultsStore:
        return ResultsStore(self.results)


@dataclass
class CellOutcome:
    key: str
    stage: str
    label: str
    status: str  # "done", "skipped", "busy" (another process holds it) or "failed"
    message: str = ""
    record: dict[str, Any] | None = None


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if isinstance(error, BenchmarkError) else f"{type(error).__name__}: {text}"


def run_cell(cell: DistillCell | EvalCell, ctx: RunContext) -> CellOutcome:
    """Run a distillation, or an evaluation (or a subclass of one: a NAS cell) whose record goes to the
    store folder named by its ``stage``."""
    stage = cell.stage
    store, key = ctx.store, cell.key
    if store.is_done(stage, key):
        return CellOutcome(key, stage, cell.label(), "skipped")
    with store.claim(key) as mine:
        if not mine:
            return CellOutcome(key, stage, cell.label(), "busy")
        if store.is_done(stage, key):  # finished by another run between the first look and the claim
            return CellOutcome(key, stage, cell.label(), "skipped")
        return run_claimed(cell, stage, ctx)


def run_claimed(cell: DistillCell | EvalCell, stage: str, ctx: RunContext) -> CellOutcome:
    store, key = ctx.store, cell.key
    started = now()
    device = torch.device("cpu")
    try:
        device = resolve_device(ctx.device)
        body = (distill_cell(cell, ctx, store, device) if isinstance(cell, DistillCell)
                else eval_cell(cell, ctx, store, device))
    except Exception as error:  # recorded, never raised: one cell must not abort the grid
        failure = {"key": key, "stage": stage, "label": cell.label(), "config": cell.config(), "status": "failed",
                   "error": one_line(error), "traceback": traceback.format_exc(), "started": started,
                   "finished": now(), "provenance": provenance(device)}
        store.write_failure(key, failure)
        return CellOutcome(key, stage, cell.label(), "failed", failure["error"], failure)
    record = {"key": key, "stage": stage, "status": "ok", "config": cell.config(), **body, "started": started,
              "finished": now(), "provenance": {**provenance(device), "command": ctx.command}}
    store.write_record(stage, key, record)
    return CellOutcome(key, stage, cell.label(), "done", record=record)


def record_lost(cell: DistillCell | EvalCell, ctx: RunContext, error: str) -> CellOutcome:
    """A failure record for a cell whose worker died (killed, out of memory, node lost) before it could
    write one itself; skipped if the cell has a record after all."""
    stage = "distill" if isinstance(cell, DistillCell) else "eval"
    failure = {"key": cell.key, "stage": stage, "label": cell.label(), "config": cell.config(), "status": "failed",
               "error": error, "traceback": "", "finished": now()}
    ctx.store.write_failure(cell.key, failure)
    return CellOutcome(cell.key, stage, cell.label(), "failed", error, failure)


def log_line(message: str) -> None:
    """One timestamped line on stdout (through tqdm, so an active progress bar stays intact)."""
    tqdm.write(f"[{dt.datetime.now().strftime('%H:%M:%S')}] {message}")


def distill_cell(cell: DistillCell, ctx: RunContext, store: ResultsStore, device: torch.device) -> dict[str, Any]:
    dataset = load_dataset(cell.dataset, ctx.data)
    previous = store.read_record("distill", cell.key) if store.has("distill", cell.key) else None
    if previous is not None:  # regenerating a missing artifact: only from the data the record names
        check_same_training_split(previous, cell, dataset)
    distiller = get_distiller(cell.method)
    hparams = distiller.resolve_hparams(dataset.spec, cell.ipc, cell.budget, cell.hparams)
    work_dir = store.work_dir(cell.key)
    task = DistillTask(train=dataset.train, spec=dataset.spec, ipc=cell.ipc,
                       budget=Budget(cell.budget, cell.max_iterations), device=device, seed=cell.seed,
                       hparams=hparams, work_dir=work_dir, cache_dir=store.cache_dir, progress=ctx.progress,
                       log=log_line, compile=ctx.compile)
    with measure(device) as cost:
        artifact = distiller.distill(task)
    store.save_artifact(cell.key, artifact)
    shutil.rmtree(work_dir, ignore_errors=True)
    return {"result": {"artifact": artifact.summary(), "serves_any_ipc": artifact.serves_any_ipc,
                       "ipc_independent": distiller.ipc_independent,
                       "storage_bytes": artifact.storage_bytes(), "data_source": dataset.source,
                       "train_images": len(dataset.train), "artifact_sha256": store.artifact_digest(cell.key)},
            "cost": {**cost.as_record(), "device": device.type},
            **({"replaces": previous} if previous is not None else {})}  # the record it replaces is kept


def network_seeds(cell: EvalCell) -> list[int]:
    """Seeds of the K evaluation networks: distinct per distillation seed, so that repeated evaluations of
    one identical set (``full``) still sample K independent networks per seed."""
    return [derive_seed("eval-network", cell.distill.seed, k) for k in cell.eval_seeds]


def check_same_training_split(distill_record: dict, cell: DistillCell | EvalCell, dataset: Dataset) -> None:
    """Cells are keyed by the dataset's *name*, so a store that received records made from another copy of
    it (a class subset carried to a GPU machine, the lossy offline CIFAR-10) would evaluate a set distilled
    from other images as if from these, or regenerate its missing artifact from them: refuse when the
    training split's size differs."""
    made_from = (distill_record.get("result") or {}).get("train_images")
    if made_from is not None and made_from != len(dataset.train):
        source = distill_record["result"].get("data_source", "?")
        label = (cell if isinstance(cell, DistillCell) else cell.distill).label()
        raise BenchmarkError(f"train_images: its distillation ({label}) was made from {made_from} "
                             f"training images ({source}), this run loads {len(dataset.train)} ({dataset.source}); "
                             "evaluate it on the data it was distilled from, or use another --results directory")


def eval_cell(cell: EvalCell, ctx: RunContext, store: ResultsStore, device: torch.device) -> dict[str, Any]:
    upstream = cell.distill.key
    with store.claim(upstream, wait=True):  # a concurrent run may be distilling it right now
        pass
    if not store.has("distill", upstream):
        raise BenchmarkError(f"its distillation ({cell.distill.label()}) has no record: it failed or has not run")
    dataset = load_dataset(cell.distill.dataset, ctx.data)
    check_same_training_split(store.read_record("distill", upstream), cell, dataset)
    artifact = store.load_artifact(upstream, LoadContext(device=device, train=lambda: dataset.train))
    evaluated = store.artifact_digest(upstream)  # ties this record to the exact artifact it read
    with measure(device) as cost:
        start = time.perf_counter()
        training_set = artifact.synthesize(cell.ipc or 0, cell.distill.seed)
        sample_seconds = time.perf_counter() - start
        result = evaluate(training_set, dataset.test, dataset.spec, cell.arch, EvalProtocol(**cell.protocol),
                          network_seeds(cell), device, cell.model_kwargs, train=dataset.train,
                          cache_dir=store.cache_dir, seeds_together=ctx.seeds_together,
                          cuda_graphs=ctx.cuda_graphs)
    return {"result": {"accuracies": result.accuracies, "mean": result.mean, "std": result.std,
                       "eval_seeds": result.seeds, "protocol_used": result.protocol, "epochs": result.epochs,
                       "train_images": result.train_images, "test_images": len(dataset.test),
                       "data_source": dataset.source, "artifact_sha256": evaluated, **result.extra},
            "cost": {**cost.as_record(), "device": device.type, "sample_seconds": round(sample_seconds, 4),
                     "train_seconds": round(result.train_seconds, 3), "test_seconds": round(result.test_seconds, 3)}}
