"""Kill a running grid and rerun it; run one grid twice at once: is every cell done exactly once?

Scenarios, each on a fresh results directory and the same small grid (digits, ``random`` at IPC 1..6,
the ``ci`` protocol: 6 distillations + 6 evaluations)::

    local-kill9   kill -9 of the local driver once 4 records exist, then rerun
    ray-kill9     the same with --backend ray (and: are Ray's processes gone after the driver's kill?)
    slurm-scancel scancel of one running array task while the driver waits, then rerun
    slurm-kill9   kill -9 of the waiting SLURM driver (the arrays go on), then rerun: it must collect the
                  cells still in flight without submitting them again
    concurrent    two local runs started at once on one results directory

After each: records on disk = cells of the plan, each record a whole JSON file whose name, ``key`` field
and hash of its ``config`` agree, no temporary file left, no current failure; and the cells the runs
report as run sum to the plan (a cell computed twice would count twice).

    python experiments/backend_reliability.py [--only local-kill9,concurrent] [--out DIR]

Needs the local SLURM cluster for the slurm scenarios (``slurm/local-cluster.sh start``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.backends.slurm import read_ledger  # noqa: E402
from benchmark.cells import config_key, expand  # noqa: E402
from benchmark.grid import load_grid  # noqa: E402
from benchmark.store import ResultsStore  # noqa: E402

GRID = """description = "reliability"
protocol = "ci"
budget = "cpu-small"
datasets = ["digits"]
methods = ["random"]
ipc = [1, 2, 3, 4, 5, 6]
archs = ["convnet"]
seeds = [0]
"""
SCENARIOS = ("local-kill9", "ray-kill9", "slurm-scancel", "slurm-kill9", "concurrent")
RAY_PROCESSES = ("raylet", "gcs_server", "ray::", "default_worker", "plasma_store", "monitor.py", "log_monitor")


def command(grid: Path, results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "benchmark.run", "--grid", str(grid), "--results", str(results), "--device", "cpu",
            "--no-progress", "--no-report", "--threads", "1", *extra]


def start(argv: list[str], log: Path) -> subprocess.Popen:
    """Start a driver in its own session (so that what it leaves behind can be found), output to ``log``."""
    with open(log, "w") as fh:
        return subprocess.Popen(argv, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def run_logged(argv: list[str], log: Path) -> int:
    with open(log, "w") as fh:
        return subprocess.run(argv, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT).returncode


def records_on_disk(results: Path) -> int:
    return sum(len(list((results / "records" / s).glob("*.json"))) for s in ("distill", "eval"))


def wait_for_records(results: Path, n: int, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while records_on_disk(results) < n:
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"run ended or timed out before {n} records")
        time.sleep(0.2)


def cells_run(log: Path) -> tuple[int, int, int]:
    match = re.search(r"cells: (\d+) run, (\d+) already done, (\d+) failed", log.read_text())
    if not match:
        raise RuntimeError(f"no summary line in {log}")
    return tuple(int(g) for g in match.groups())


def audit(results: Path, plan_keys: set[str]) -> dict:
    """What is on disk: whole, self-consistent records, one per cell, nothing half-written."""
    store, bad, keys = ResultsStore(results), 0, []
    for stage in ("distill", "eval"):
        for path in (results / "records" / stage).glob("*.json"):
            try:
                record = json.loads(path.read_text())
                ok = record["key"] == path.stem == config_key(record["config"])
            except (json.JSONDecodeError, KeyError):
                ok = False
            bad += not ok
            keys.append(path.stem)
    leftovers = [p for p in results.rglob("*.tmp")] + [p for p in (results / "artifacts").glob(".*")]
    return {"records": len(keys), "distinct": len(set(keys)), "missing": len(plan_keys - set(keys)),
            "unexpected": len(set(keys) - plan_keys), "corrupt": bad, "tmp_left": len(leftovers),
            "failures": len(store.failures())}


def ray_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout.splitlines()[1:]
    return [line.strip() for line in out if any(name in line for name in RAY_PROCESSES)]


def end_session(pgid: int) -> None:
    """Whatever the killed driver left behind in its own session (started by this script) goes too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def kill_then_rerun(grid: Path, results: Path, backend: list[str], out: Path, after: int) -> dict:
    started = time.time()
    first = start(command(grid, results, *backend), out / "first.log")
    wait_for_records(results, after, first)
    os.kill(first.pid, signal.SIGKILL)  # the driver only
    first.wait()
    at_kill = records_on_disk(results)
    time.sleep(5)
    left = ray_processes() if "ray" in backend else []
    end_session(first.pid)
    rerun_rc = run_logged(command(grid, results, *backend), out / "second.log")
    ran, skipped, failed = cells_run(out / "second.log")
    return {"records_at_kill": at_kill, "rerun_ran": ran, "rerun_skipped": skipped, "rerun_failed": failed,
            "rerun_rc": rerun_rc, "ray_processes_after_kill": len(left), "seconds": round(time.time() - started)}


def slurm_scancel(grid: Path, results: Path, out: Path) -> dict:
    started = time.time()
    first = start(command(grid, results, "--backend", "slurm", "--slurm-mem", "1"), out / "first.log")
    deadline = time.time() + 120
    while len(read_ledger(results)) < 12 and time.time() < deadline:
        time.sleep(0.2)
    running = ""
    while not running and time.time() < deadline:  # a task that is running now, not one still pending
        squeue = subprocess.run(["squeue", "-h", "-r", "-t", "R", "-o", "%i"], capture_output=True, text=True)
        ours = {t.task_id for t in read_ledger(results) if t.stage == "distill"}
        running = next((i for i in squeue.stdout.split() if i in ours), "")
        time.sleep(0.2)
    subprocess.run(["scancel", running], check=True)
    rc_first = first.wait()
    failed_listed = f"SLURM task {running} ended without a result" in (out / "first.log").read_text()
    ran1, _, failed1 = cells_run(out / "first.log")
    rerun_rc = run_logged(command(grid, results, "--backend", "slurm", "--slurm-mem", "1"), out / "second.log")
    ran2, skipped2, failed2 = cells_run(out / "second.log")
    return {"cancelled": running, "first_rc": rc_first, "first_ran": ran1, "first_failed": failed1,
            "failure_listed": failed_listed, "rerun_ran": ran2, "rerun_skipped": skipped2, "rerun_failed": failed2,
            "rerun_rc": rerun_rc, "seconds": round(time.time() - started)}


def slurm_kill9(grid: Path, results: Path, out: Path) -> dict:
    started = time.time()
    first = start(command(grid, results, "--backend", "slurm", "--slurm-mem", "1"), out / "first.log")
    wait_for_records(results, 3, first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    at_kill = records_on_disk(results)
    end_session(first.pid)
    rerun_rc = run_logged(command(grid, results, "--backend", "slurm", "--slurm-mem", "1"), out / "second.log")
    text = (out / "second.log").read_text()
    ran, skipped, failed = cells_run(out / "second.log")
    return {"records_at_kill": at_kill, "rerun_resubmitted": "submitted job array" in text,
            "rerun_collected_in_flight": sum(int(n) for n in re.findall(r"(\d+) cell\(s\) still queued", text)),
            "rerun_ran": ran, "rerun_skipped": skipped, "rerun_failed": failed, "rerun_rc": rerun_rc,
            "arrays_submitted": len({t.task_id.split("_")[0] for t in read_ledger(results)}),
            "seconds": round(time.time() - started)}


def concurrent(grid: Path, results: Path, out: Path) -> dict:
    started = time.time()
    runs = [start(command(grid, results), out / f"run{i}.log") for i in range(2)]
    codes = [r.wait() for r in runs]
    counts = [cells_run(out / f"run{i}.log") for i in range(2)]
    return {"rcs": codes, "ran": [c[0] for c in counts], "skipped": [c[1] for c in counts],
            "busy_lines": [bool(re.search("left to another run", (out / f"run{i}.log").read_text())) for i in range(2)],
            "ran_total": sum(c[0] for c in counts), "seconds": round(time.time() - started)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help=f"comma list of scenarios ({', '.join(SCENARIOS)})")
    p.add_argument("--out", help="keep the results directories and logs here (default: a temporary directory)")
    a = p.parse_args()
    chosen = a.only.split(",") if a.only else list(SCENARIOS)
    base = Path(a.out or tempfile.mkdtemp(prefix="d2m-reliability-"))
    base.mkdir(parents=True, exist_ok=True)
    grid = base / "grid.toml"
    grid.write_text(GRID)
    plan = expand(load_grid(str(grid)))
    plan_keys = {c.key for c in plan.distill_cells + plan.eval_cells}
    print(f"grid: {len(plan.distill_cells)} distillations + {len(plan.eval_cells)} evaluations; work in {base}")
    for name in chosen:
        out = base / name
        out.mkdir()
        results = out / "results"
        if name == "local-kill9":
            facts = kill_then_rerun(grid, results, [], out, after=4)
        elif name == "ray-kill9":
            facts = kill_then_rerun(grid, results, ["--backend", "ray"], out, after=4)
        elif name == "slurm-scancel":
            facts = slurm_scancel(grid, results, out)
        elif name == "slurm-kill9":
            facts = slurm_kill9(grid, results, out)
        else:
            facts = concurrent(grid, results, out)
        facts.update(audit(results, plan_keys))
        print(f"{name}: {json.dumps(facts)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
