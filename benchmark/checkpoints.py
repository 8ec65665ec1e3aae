"""Checksummed, atomically written torch files: caches and resume checkpoints that methods share.

A file ``x.pt`` is written beside ``x.pt.sha256``; :func:`load_checked` returns ``None`` (and says why)
when either is missing or they disagree, so a truncated or corrupted cache entry is recomputed instead of
crashing a grid or, worse, being used. :func:`load_or_build` builds a missing entry under a lock beside it,
so concurrent cells that need the same entry (Ray workers, SLURM array tasks, two shells on one store) pay
for it once: the others wait, then load it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import torch

from benchmark.data.spec import DatasetSpec


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_entry(cache_dir: Path, kind: str, spec: DatasetSpec, fields: dict[str, Any], suffix: str = ".pt") -> Path:
    """Where a cache entry of ``kind`` computed on ``spec``'s data lives: the dataset's name made file-safe (it may
    be ``npz:/path/x.npz`` or ``val:mnist``) and the first 16 hex digits of the SHA-256 of everything that
    determines the entry (the spec's summary and ``fields``, as sorted JSON)."""
    key = json.dumps({"spec": spec.summary(), **fields}, sort_keys=True)
    safe_name = spec.name.replace(":", "_").replace("/", "_")
    return cache_dir / kind / f"{safe_name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}{suffix}"


def save_checked(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, record its sha256, then rename both into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        digest = _digest(Path(tmp))
        sidecar_tmp = f"{tmp}.sha256"
        Path(sidecar_tmp).write_text(digest + "\n")
        os.replace(tmp, path)
        os.replace(sidecar_tmp, f"{path}.sha256")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        Path(f"{tmp}.sha256").unlink(missing_ok=True)
        raise


def checked_digest(path: Path) -> str | None:
    """The sha256 recorded beside a file written by :func:`save_checked` (``None`` without one): what a
    record cites to say which cache entry it used, since one entry's name survives its recomputation."""
    sidecar = Path(f"{path}.sha256")
    return sidecar.read_text().strip() if sidecar.is_file() else None


def load_checked(path: Path, map_location: torch.device | str = "cpu", what: str = "cache file") -> Any | None:
    """The object saved by :func:`save_checked`, or ``None`` if absent, unverifiable or corrupt."""
    sidecar = Path(f"{path}.sha256")
    if not path.is_file():
        return None
    if not sidecar.is_file() or sidecar.read_text().strip() != _digest(path):
        print(f"{what} {path} fails its checksum; recomputing it", file=sys.stderr)
        return None
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a file with the right checksum that still does not load is equally unusable
        print(f"{what} {path} does not load ({type(e).__name__}); recomputing it", file=sys.stderr)
        return None


@contextmanager
def file_lock(path: Path, wait: bool = True, on_wait: Callable[[], None] | None = None) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path``; yields False at once if another live process holds it (unless
    ``wait``: then ``on_wait`` is called and the lock awaited). The kernel releases it when its holder dies,
    even by ``kill -9``. Where the lock file cannot be made (a read-only cache) or the file system offers no
    ``flock`` it yields True unlocked: every file here is written atomically, so the lock only saves repeated
    work, never correctness."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield True
    finally:
        os.close(fd)


class Cached(NamedTuple):
    """A cache entry's object, whether this call built it, and how long it waited for another process's build
    (time its caller's wall clock holds but did not spend computing: cost reports subtract it)."""

    value: Any
    built_now: bool
    waited_seconds: float


def load_or_build(path: Path, build: Callable[[], Any], map_location: torch.device | str = "cpu",
                  what: str = "cache file") -> Cached:
    """The object cached at ``path`` if intact, else ``build()``'s, saved there.

    Both happen under ``path``'s lock (``<name>.lock`` beside it): a process that finds another building the
    entry waits and then loads it, and if the builder died, the next holder builds it (a build that
    checkpoints itself resumes)."""
    waited_from: list[float] = []

    def say_waiting() -> None:
        waited_from.append(time.perf_counter())
        print(f"{what} {path} is being built by another process; waiting for it", file=sys.stderr)

    with file_lock(path.with_name(f"{path.name}.lock"), on_wait=say_waiting):
        waited = time.perf_counter() - waited_from[0] if waited_from else 0.0
        saved = load_checked(path, map_location, what)
        if saved is not None:
            return Cached(saved, False, waited)
        built = build()
        save_checked(built, path)
        return Cached(built, True, waited)
