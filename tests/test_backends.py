"""The Ray Tune and SLURM backends on a tiny grid, and the same records whichever backend ran it.

The SLURM tests submit to a real single-node cluster (``slurm/local-cluster.sh``, started by ``.ci/run``
or here when missing, and stopped again if this session started it); they skip, saying why, only where
that cluster cannot be started (no root, no apt, not Linux).
"""

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import submitit

from benchmark.backends.raytune import RayOptions, trial_resources
from benchmark.backends.slurm import CellBatch, read_ledger
from benchmark.cells import expand
from benchmark.grid import load_grid
from benchmark.run import main as run_main
from benchmark.runner import RunContext
from benchmark.store import ResultsStore

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "slurm" / "local-cluster.sh"
# the agreement grid: digits, random + full, the `ci` protocol; one thread everywhere, so that the
# float reductions (and so the accuracies) are the same in every process
GRID = """description = "backend agreement"
protocol = "ci"
budget = "cpu-small"
datasets = ["digits"]
methods = ["random", "full"]
ipc = [1]
archs = ["convnet"]
seeds = [0]
"""
SLURM_SMALL = ["--slurm-mem", "1", "--slurm-time", "10"]


def run(*args: str) -> int:
    return run_main(["--no-progress", "--device", "cpu", "--no-report", *args])


def records(results: Path, stage: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (results / "records" / stage).glob("*.json")}


def accuracies(results: Path) -> dict[str, list[float]]:
    return {k: r["result"]["accuracies"] for k, r in records(results, "eval").items()}


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "agree.toml"
    path.write_text(GRID)
    return path


@pytest.fixture(scope="module")
def local_store(grid_file, tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("local")
    assert run("--grid", str(grid_file), "--results", str(results), "--threads", "1") == 0
    return results


@pytest.fixture(scope="module")
def ray_store(grid_file, tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("ray")
    # one trial at a time: each new trial actor imports torch, and the tests must stay cheap on 2 cores
    assert run("--grid", str(grid_file), "--results", str(results), "--backend", "ray", "--ray-max-concurrent", "1") == 0
    return results


@pytest.fixture(scope="session")
def slurm_cluster():
    if subprocess.run([str(CLUSTER), "status"], capture_output=True).returncode == 0:
        yield
        return
    started = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        why = (started.stderr.strip() or started.stdout.strip() or "no output").splitlines()[-1]
        pytest.skip(f"SLURM cannot be started here (slurm/local-cluster.sh start: {why})")
    yield
    subprocess.run([str(CLUSTER), "stop"], capture_output=True)


@pytest.fixture(scope="module")
def slurm_store(slurm_cluster, grid_file, tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("slurm")
    assert run("--grid", str(grid_file), "--results", str(results), "--backend", "slurm",
               "--slurm-cells-per-job", "8", *SLURM_SMALL) == 0
    return results


def squeue_ids() -> set[str]:
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True).stdout
    return set(out.split())


# --- Ray --------------------------------------------------------------------------------------------

def test_ray_backend_writes_the_store_and_reports_to_tune(ray_store, local_store):
    assert accuracies(ray_store) == accuracies(local_store) and len(accuracies(ray_store)) == 2
    assert records(ray_store, "distill").keys() == records(local_store, "distill").keys()
    reported = [json.loads(line) for p in (ray_store / "logs" / "ray").glob("eval-*/*/result.json")
                for line in p.read_text().splitlines()]
    by_key = {r["key"]: r for r in reported}
    assert by_key.keys() == accuracies(ray_store).keys()
    for key, rec in records(ray_store, "eval").items():
        assert by_key[key]["status"] == "done" and by_key[key]["accuracy"] == pytest.approx(rec["result"]["mean"])
    assert not (Path.home() / "ray_results").exists() or not any((Path.home() / "ray_results").glob("eval-*"))


def test_ray_reruns_skip_done_cells_without_starting_ray(ray_store, grid_file, capsys):
    started = time.perf_counter()
    assert run("--grid", str(grid_file), "--results", str(ray_store), "--backend", "ray") == 0
    assert "cells: 0 run, 4 already done, 0 failed" in capsys.readouterr().out
    assert time.perf_counter() - started < 5


def test_unreachable_ray_address_is_one_line_exit_2_and_nothing_written(tmp_path, grid_file, capsys):
    results = tmp_path / "r"
    assert run("--grid", str(grid_file), "--results", str(results), "--backend", "ray",
               "--ray-address", "127.0.0.1:1") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --ray-address 127.0.0.1:1: no Ray cluster reachable") and "\n" not in err
    assert not results.exists()
    assert run("--grid", str(grid_file), "--backend", "ray", "--ray-address", "nowhere") == 2
    assert "invalid --ray-address='nowhere'" in capsys.readouterr().err


def test_trial_resources_share_gpus_by_stage_and_family():
    plan = expand(load_grid(str(ROOT / "benchmark" / "grids" / "smoke.toml")).with_axes(methods=["random", "full"],
                                                                                         ipc=[1], seeds=[0]))
    random_distill = next(c for c in plan.distill_cells if c.method == "random")
    random_eval = next(c for c in plan.eval_cells if c.distill.method == "random")
    full_eval = next(c for c in plan.eval_cells if c.distill.method == "full")
    opts = RayOptions(cpus_per_trial=1)
    assert trial_resources(random_distill, opts, node_cpus=8, cluster_gpus=1) == {"CPU": 1, "GPU": 0.25}
    assert trial_resources(random_eval, opts, node_cpus=8, cluster_gpus=1) == {"CPU": 1, "GPU": 0.1}
    assert trial_resources(full_eval, opts, node_cpus=8, cluster_gpus=1)["GPU"] == 0.25  # whole data: as distill
    assert trial_resources(random_eval, RayOptions(cpus_per_trial=16), node_cpus=8, cluster_gpus=0) == \
        {"CPU": 8, "GPU": 0.0}  # never more than a node has, no GPU where the cluster has none


# --- SLURM: no cluster needed -------------------------------------------------------------------------

def test_no_slurm_on_the_machine_is_one_line_exit_2(tmp_path, grid_file, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert run("--grid", str(grid_file), "--results", str(tmp_path / "r"), "--backend", "slurm") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --backend slurm: SLURM not found (sinfo is not on PATH)") and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_cluster_file_per_stage_overrides_and_flags(tmp_path, grid_file, capsys):
    from benchmark.run import parse_options

    conf = tmp_path / "cluster.toml"
    conf.write_text('partition = "gpu"\ntime = "1:30:00"\ncpus = 4\nmem_gb = 16\n[eval]\ncells_per_job = 5\ngpus = 1\n')
    opts = parse_options(["--backend", "slurm", "--slurm-config", str(conf), "--slurm-cpus", "2"]).backend_options
    distill, evals = opts.stages["distill"], opts.stages["eval"]
    assert (distill.partition, distill.time_min, distill.cpus, distill.mem_gb, distill.gpus) == ("gpu", 90, 2, 16, 0)
    assert (evals.cells_per_job, evals.gpus, evals.cpus) == (5, 1, 2)
    conf.write_text("cpu = 4\n")
    assert run("--grid", str(grid_file), "--backend", "slurm", "--slurm-config", str(conf), "--dry-run") == 2
    assert "unknown key ['cpu']; allowed: partition" in capsys.readouterr().err
    assert run("--grid", str(grid_file), "--backend", "slurm", "--slurm-time", "soon", "--dry-run") == 2
    assert "invalid --slurm-time='soon': minutes, HH:MM:SS or D-HH:MM:SS" in capsys.readouterr().err


def test_a_requeued_task_resubmits_the_same_cells_and_skips_done_ones(local_store, grid_file):
    plan = expand(load_grid("smoke"))  # any cells: only their identity matters here
    batch = CellBatch(RunContext(results=local_store), threads=1)
    resubmission = batch.checkpoint(plan.distill_cells[:2])
    assert isinstance(resubmission, submitit.helpers.DelayedSubmission)
    assert resubmission.function is batch and resubmission.args == (plan.distill_cells[:2],)
    done = expand(load_grid(str(grid_file))).eval_cells
    assert [o["status"] for o in batch(done)] == ["skipped"] * len(done)


# --- SLURM: a real cluster ------------------------------------------------------------------------------

@pytest.mark.slurm
def test_slurm_backend_writes_the_same_records_as_local(slurm_store, local_store):
    assert accuracies(slurm_store) == accuracies(local_store) and len(accuracies(slurm_store)) == 2
    assert records(slurm_store, "distill").keys() == records(local_store, "distill").keys()
    tasks = read_ledger(slurm_store)
    assert [t.stage for t in tasks] == ["distill", "eval"]  # 8 cells per task: one task per stage
    for task in tasks:
        logs = slurm_store / "logs" / task.task_id.split("_")[0]
        assert (logs / f"{task.task_id}_0_log.out").is_file() and (logs / f"{task.task_id}_0_log.err").is_file()


@pytest.mark.slurm
def test_ray_slurm_and_local_agree(slurm_store, ray_store, local_store):
    assert accuracies(local_store) == accuracies(ray_store) == accuracies(slurm_store)


@pytest.mark.slurm
def test_scancel_of_a_task_is_listed_the_rest_goes_on_and_a_no_wait_rerun_completes(slurm_cluster, tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(GRID.replace('["random", "full"]', '["random"]').replace("ipc = [1]", "ipc = [1, 2, 3]"))
    results = tmp_path / "r"
    base = ["--grid", str(grid), "--results", str(results), "--backend", "slurm", *SLURM_SMALL]
    waiting = threading.Thread(target=lambda: codes.append(run(*base)))
    codes: list[int] = []
    waiting.start()
    deadline = time.time() + 60
    while len(read_ledger(results)) < 6 and time.time() < deadline:  # both arrays submitted
        time.sleep(0.2)
    victim = read_ledger(results)[2]  # the third distillation: pending while two 1-CPU tasks fill the node
    assert victim.stage == "distill" and victim.task_id in squeue_ids()
    subprocess.run(["scancel", victim.task_id], check=True)
    waiting.join(timeout=400)
    assert codes == [1]
    captured = capsys.readouterr()
    assert f"SLURM task {victim.task_id} ended without a result" in captured.err  # recorded and listed
    assert "has no record: it failed or has not run" in captured.err  # its evaluation; the others ran
    assert "cells: 4 run, 0 already done, 2 failed" in captured.out and len(records(results, "eval")) == 2

    assert run(*base, "--no-wait") == 0  # submits only the two missing cells, returns at once
    out = capsys.readouterr().out
    assert "distill: submitted job array" in out and "(1 tasks, 1 cells; each cpus=1, mem=1GB" in out and "rerun the same command" in out
    assert run(*base) == 0  # collects them without submitting again
    out = capsys.readouterr().out
    assert "submitted" not in out and re.search(r"cells: \d run, \d already done, 0 failed", out)
    assert len(records(results, "eval")) == 3 and len(records(results, "distill")) == 3
    assert ResultsStore(results).failures() == []


@pytest.mark.slurm
@pytest.mark.parametrize("flags,message", [
    (["--slurm-cpus", "64"], "no node of partition debug can run the distill jobs (cpus=64); it offers debug: "),
    (["--slurm-gpus", "1", "--slurm-mem", "100000"], "(mem=100000GB, gpus=1)"),
    (["--slurm-partition", "gpux"], "unknown SLURM partition 'gpux'"),
])
def test_resources_no_partition_can_give_are_one_line_exit_2_nothing_submitted(slurm_cluster, tmp_path, grid_file,
                                                                               capsys, flags, message):
    before = squeue_ids()
    assert run("--grid", str(grid_file), "--results", str(tmp_path / "r"), "--backend", "slurm", *flags) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "r").exists() and squeue_ids() <= before


@pytest.mark.slurm
def test_sbatch_template_runs_shards(slurm_cluster, tmp_path, grid_file):
    results = tmp_path / "r"
    env = {**os.environ, "GRID": str(grid_file), "EXTRA": f"--results {results} --device cpu"}
    job = subprocess.run(["sbatch", "--parsable", "--array=0-1", "--mem=1G", "--cpus-per-task=1", "--time=10",
                          f"--chdir={ROOT}", f"--output={tmp_path}/%a.out", f"--error={tmp_path}/%a.err",
                          str(ROOT / "slurm" / "shard.sbatch")], env=env, capture_output=True, text=True, check=True)
    array = job.stdout.strip().split(";")[0]
    deadline = time.time() + 240
    while any(i.startswith(f"{array}_") for i in squeue_ids()) and time.time() < deadline:
        time.sleep(1)
    assert "shard 0/2" in (tmp_path / "0.out").read_text() and "shard 1/2" in (tmp_path / "1.out").read_text()
    assert len(records(results, "eval")) == 2 and len(records(results, "distill")) == 2
