"""What a result record says about where it came from: code version, libraries, machine, device."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import torch

import benchmark

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CODE_PACKAGES = ("benchmark", "baselines", "d2m")  # the code a record's numbers depend on


@functools.lru_cache(maxsize=1)
def git_state() -> dict:
    """Commit and dirty flag of the checkout the code runs from (None when not a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


@functools.lru_cache(maxsize=1)
def code_digest(root: Path = PROJECT_ROOT) -> str:
    """SHA-256 over the project's Python sources (each file's path and bytes, in path order).

    Why: it pins the code a record came from where git cannot — a dirty checkout, or a copy whose ``.git`` is
    stale (a lent GPU machine's copy reported the session's first commit) — and any checkout can recompute it
    to check a record against its own code."""
    h = hashlib.sha256()
    for path in sorted(p for package in CODE_PACKAGES for p in (root / package).rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def provenance(device: torch.device) -> dict:
    import numpy

    return {
        "package_version": benchmark.__version__,
        "git": git_state(),
        "code_sha256": code_digest(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "device": device_description(device),
    }
