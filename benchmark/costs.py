"""Wall time and peak memory of one unit of work, measured around it.

On CUDA the peak is ``torch.cuda.max_memory_allocated`` after a reset. On Linux CPUs the process's
resident high-water mark (``VmHWM``) is reset through ``/proc/self/clear_refs`` before the work, so the
peak belongs to this cell and not to an earlier one in the same process; elsewhere the lifetime maximum
(``ru_maxrss``) is reported and marked as such.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch


def _read_hwm() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class Cost:
    wall_seconds: float = 0.0
    peak_memory_bytes: int | None = None
    peak_memory_kind: str = ""
    extra: dict = field(default_factory=dict)

    def as_record(self) -> dict:
        return {"wall_seconds": round(self.wall_seconds, 3), "peak_memory_bytes": self.peak_memory_bytes,
                "peak_memory_kind": self.peak_memory_kind, **self.extra}


@contextmanager
def measure(device: torch.device) -> Iterator[Cost]:
    cost = Cost()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    per_cell = not cuda and _reset_hwm()
    start = time.perf_counter()
    try:
        yield cost
    finally:
        if cuda:
            torch.cuda.synchronize(device)
        cost.wall_seconds = time.perf_counter() - start
        if cuda:
            cost.peak_memory_bytes, cost.peak_memory_kind = torch.cuda.max_memory_allocated(device), "cuda_allocated"
        elif per_cell and _read_hwm() is not None:
            cost.peak_memory_bytes, cost.peak_memory_kind = _read_hwm(), "process_rss_peak"
        else:
            scale = 1 if sys.platform == "darwin" else 1024
            cost.peak_memory_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
            cost.peak_memory_kind = "process_rss_lifetime_max"
