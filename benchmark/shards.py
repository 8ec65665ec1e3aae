"""``--shard I/N``: a deterministic share of a plan, for batch scripts that run one shard per array task.

The unit of a share is a distillation together with the evaluations that depend on it, so a shard can
run its distillations and then its evaluations without waiting for another shard. Shares are balanced
by the estimated cost of each unit (longest first, each to the least-loaded shard, ties broken by key),
which a plain round-robin would not do for grids mixing ImageNet and MNIST cells.

The partition is computed over *all* the plan's cells, not only the pending ones: array tasks start at
different times, while others are writing records, so a partition of "what is pending now" could differ
between two tasks of the same array and leave cells to nobody. Each shard then skips what is done.
"""

from __future__ import annotations

import heapq

from benchmark.cells import Plan
from benchmark.cost_model import distill_seconds, eval_seconds
from benchmark.errors import BenchmarkError


def parse_shard(text: str) -> tuple[int, int]:
    """``"3/16"`` → (3, 16); shards are numbered 0..N-1 like ``$SLURM_ARRAY_TASK_ID`` with ``--array=0-(N-1)``."""
    index, slash, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = -1
    if not slash or n < 1 or not 0 <= i < n:
        raise BenchmarkError(f"invalid --shard={text!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return i, n


def shard_plan(plan: Plan, index: int, count: int) -> Plan:
    """The part of ``plan`` that shard ``index`` of ``count`` runs."""
    units = sorted(((distill_seconds(d) + sum(map(eval_seconds, evals)), d.key) for d, evals in plan.groups()),
                   key=lambda unit: (-unit[0], unit[1]))
    loads = [(0.0, shard) for shard in range(count)]
    mine: set[str] = set()
    for seconds, key in units:
        load, shard = heapq.heappop(loads)
        if shard == index:
            mine.add(key)
        heapq.heappush(loads, (load + seconds, shard))
    return plan.restricted(mine)
