"""Parallel efficiency of the Ray backend: one grid through ``--backend local`` and ``--backend ray``.

Both run as fresh command-line processes on fresh results directories, so each time includes what a user
waits for: start-up, Ray's cluster start and shutdown, every actor's torch import. The local backend uses
every core for torch's threads (its default); Ray runs one cell per core with one thread each. Prints the
wall times and the speed-up ratio local / ray.

    python benchmarks/grid_speed.py                      # the smoke grid (72 cells; ~10 min on 2 cores)
    python benchmarks/grid_speed.py --reduced            # smoke with one seed and IPC 1, 10 (17 cells)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_run(backend: str, extra: list[str], results: Path) -> tuple[float, str]:
    argv = [sys.executable, "-m", "benchmark.run", "--grid", "smoke", "--backend", backend, "--results", str(results),
            "--device", "cpu", "--no-progress", "--no-report", *extra]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{backend} run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    summary = re.search(r"cells: .*", done.stdout)
    return seconds, summary.group() if summary else "?"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reduced", action="store_true", help="one seed, IPC 1 and 10: 17 cells instead of 72")
    a = p.parse_args()
    axes = ["--seeds", "0", "--ipc", "1,10"] if a.reduced else []
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="d2m-grid-speed-") as tmp:
        local_s, local_cells = timed_run("local", axes, Path(tmp) / "local")
        ray_s, ray_cells = timed_run("ray", axes, Path(tmp) / "ray")
    grid = "smoke (reduced: seed 0, IPC 1,10)" if a.reduced else "smoke"
    print(f"grid {grid} on {cores} cores")
    print(f"  local (1 process, {cores} torch threads): {local_s:7.1f} s   {local_cells}")
    print(f"  ray   (1 trial per core, 1 thread each):  {ray_s:7.1f} s   {ray_cells}")
    print(f"  speed-up local/ray: {local_s / ray_s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
