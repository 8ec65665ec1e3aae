"""The results store: one JSON record per finished cell, artifacts beside them, all written atomically.

Layout under the results directory::

    records/distill/<key>.json   a finished distillation (config, artifact summary, cost, provenance)
    records/eval/<key>.json      a finished evaluation (config, accuracies, cost, provenance)
    failures/<key>.json          the last failure of a cell (removed when the cell later succeeds)
    artifacts/<key>/             what a distillation produced (``artifact.json`` + the method's files)
    cache/                       reusable intermediate products (feature nets, pre-trained generators, ...),
                                 each built once under a lock beside it (:func:`benchmark.checkpoints.load_or_build`)
    work/<key>/                  checkpoints of a distillation in progress (resume after a kill)
    locks/<key>.lock             advisory locks: the cell is being computed by a live process
    logs/                        SLURM job output and Ray Tune experiment state

Artifacts are not committed with the records (their size); a clone that has a distillation's record but
not its artifact regenerates it when a later run needs it to evaluate something (:meth:`Plan.pending`), and
the new record keeps the one it replaces under ``replaces``. A distillation record carries its artifact's
checksum (:meth:`ResultsStore.artifact_digest`) and every evaluation the checksum of the artifact it read, so
an evaluation computed from an earlier artifact of a regenerated distillation stays recognisable (one
written before checksums existed, by finishing before the regeneration).

Every file is written to a temporary name in the same directory and renamed into place, so a killed run
leaves either the whole record or nothing. A record's file name is its key: two runs finishing the same
cell write the same name, and a rerun skips every key that has a record.

Two runs on one directory (two shells, overlapping SLURM arrays, a rerun while a ``--no-wait`` grid is
still queued) also stay correct without the locks; the locks only keep them from computing the same cell
twice: a cell claimed by a live process is left to it (``flock``, released by the kernel when that
process dies, even by ``kill -9``). Where the file system offers no ``flock``, cells proceed unlocked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from benchmark.checkpoints import file_lock
from benchmark.distiller import Artifact, LoadContext, artifact_class, artifact_class_path
from benchmark.errors import BenchmarkError

STAGES = ("distill", "eval")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultsStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # --- set-up ---------------------------------------------------------------------------------------
    def ensure_writable(self) -> None:
        """Create the layout, or raise a one-line error naming the directory that cannot be written."""
        try:
            for sub in ("records/distill", "records/eval", "failures", "artifacts", "cache", "work"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-probe-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise BenchmarkError(f"results directory {self.root} is not writable ({e.strerror or e})") from None

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def work_dir(self, key: str) -> Path:
        path = self.root / "work" / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- records --------------------------------------------------------------------------------------
    def record_path(self, stage: str, key: str) -> Path:
        return self.root / "records" / stage / f"{key}.json"

    def has(self, stage: str, key: str) -> bool:
        return self.record_path(stage, key).is_file()

    def is_done(self, stage: str, key: str) -> bool:
        """The cell has a record and, for a distillation, the artifact that its evaluations read."""
        return self.has(stage, key) and (stage != "distill" or self.has_artifact(key))

    def done_keys(self, stage: str) -> set[str]:
        folder = self.root / "records" / stage
        return {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()

    def write_record(self, stage: str, key: str, record: dict[str, Any]) -> None:
        atomic_write_text(self.record_path(stage, key), json.dumps(record, indent=1, sort_keys=True, default=str))
        (self.root / "failures" / f"{key}.json").unlink(missing_ok=True)

    def read_record(self, stage: str, key: str) -> dict[str, Any]:
        return json.loads(self.record_path(stage, key).read_text())

    def records(self, stage: str) -> Iterator[dict[str, Any]]:
        """Every readable record of a stage; unreadable files are skipped (they cannot be ours: ours are
        renamed into place whole)."""
        folder = self.root / "records" / stage
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                yield json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue

    def write_failure(self, key: str, record: dict[str, Any]) -> None:
        """Record a failure, unless the cell has a record (a concurrent run finished it meanwhile)."""
        if any(self.has(stage, key) for stage in STAGES):
            return
        atomic_write_text(self.root / "failures" / f"{key}.json", json.dumps(record, indent=1, sort_keys=True,
                                                                             default=str))

    def read_failure(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / "failures" / f"{key}.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def failures(self) -> list[dict[str, Any]]:
        """The current failures: a failure is stale once its cell has a record (a concurrent run or a
        worker on a lagging network file system may have written it after the record)."""
        folder = self.root / "failures"
        done = set().union(*(self.done_keys(stage) for stage in STAGES))
        out = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            if path.stem in done:
                continue
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError):
                continue
        return out

    # --- locks --------------------------------------------------------------------------------------------
    def claim(self, key: str, wait: bool = False) -> AbstractContextManager[bool]:
        """Hold the cell's lock; yields False at once if another live process holds it (unless ``wait``)."""
        return file_lock(self.root / "locks" / f"{key}.lock", wait)

    # --- artifacts ------------------------------------------------------------------------------------
    def artifact_dir(self, key: str) -> Path:
        return self.root / "artifacts" / key

    def has_artifact(self, key: str) -> bool:
        return (self.artifact_dir(key) / "artifact.json").is_file()

    def save_artifact(self, key: str, artifact: Artifact) -> Path:
        """Write into a temporary directory, then rename it into place (a concurrent twin's copy wins)."""
        final = self.artifact_dir(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}."))
        try:
            artifact.save(tmp)
            (tmp / "artifact.json").write_text(json.dumps({"class": artifact_class_path(artifact)}))
            try:
                os.replace(tmp, final)
            except OSError:  # a concurrent run renamed its (identical) copy into place first
                if not (final / "artifact.json").is_file():
                    raise
                shutil.rmtree(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def load_artifact(self, key: str, context: LoadContext) -> Artifact:
        folder = self.artifact_dir(key)
        try:
            meta = json.loads((folder / "artifact.json").read_text())
        except (OSError, json.JSONDecodeError):
            raise BenchmarkError(f"artifact {key} is missing or unreadable under {folder}: rerun the grid that "
                                 "distilled it (with this cell in it) to regenerate it") from None
        return artifact_class(meta["class"]).load(folder, context)

    def artifact_digest(self, key: str) -> str:
        """SHA-256 over the artifact folder's files (relative names and contents, in name order)."""
        folder = self.artifact_dir(key)
        digest = hashlib.sha256()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
        return digest.hexdigest()

    def artifact_bytes_on_disk(self, key: str) -> int:
        return sum(p.stat().st_size for p in self.artifact_dir(key).rglob("*") if p.is_file())
