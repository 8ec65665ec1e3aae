"""``python -m benchmark.run`` end to end on the embedded digits, plus its bad-input contract."""

import json
import shutil
import sys

import pytest

from baselines.coresets import RandomCoreset
from benchmark import leaderboard
from benchmark.provenance import code_digest
from benchmark.run import main as run_main
from benchmark.store import ResultsStore


def run(*args: str) -> int:
    device = [] if "--device" in args else ["--device", "cpu"]
    return run_main(["--no-progress", *device, *args])


def test_grid_runs_records_reports_and_resumes(tmp_path, ci_grid, capsys):
    results = tmp_path / "results"
    grid = ci_grid(methods=["random", "full"], ipc=[1, 2], seeds=[0, 1])
    assert run("--grid", str(grid), "--results", str(results)) == 0
    out = capsys.readouterr().out
    assert "cells: 12 run, 0 already done, 0 failed" in out  # random: 4 + 4, full: 2 + 2
    # without the progress bar, a start and an end line per cell (what a batch job's log shows)
    assert out.count(": started") == 12 and out.count(": done after ") == 12 and "] cell 12/12 " in out
    assert "| random" in out and "digits ipc=2" in out
    records = [json.loads(p.read_text()) for p in (results / "records" / "eval").glob("*.json")]
    assert len(records) == 6
    rec = next(r for r in records if r["config"]["method"] == "random")
    assert rec["config"]["protocol"]["name"] == "ci" and len(rec["result"]["accuracies"]) == 1
    assert rec["provenance"]["torch"] and rec["cost"]["wall_seconds"] > 0 and rec["config"]["results_version"]
    assert rec["provenance"]["command"].startswith("python -m benchmark.run --no-progress --device cpu --grid ")
    assert rec["provenance"]["code_sha256"] == code_digest()  # the code itself, whatever git says
    distills = {r["config"]["method"]: r["result"] for r in
                (json.loads(p.read_text()) for p in (results / "records" / "distill").glob("*.json"))}
    assert distills["full"]["ipc_independent"] and not distills["random"]["ipc_independent"]
    board = (results / "LEADERBOARD.md").read_text()
    assert "## How these numbers were produced" in board and rec["provenance"]["command"] in board
    assert (results / "LEADERBOARD.md").is_file() and list((results / "plots").glob("accuracy_vs_ipc_digits_*.png"))

    assert run("--grid", str(grid), "--results", str(results)) == 0
    assert "cells: 0 run, 12 already done, 0 failed" in capsys.readouterr().out


def test_axis_flags_replace_the_grid(tmp_path, ci_grid, capsys):
    assert run("--grid", str(ci_grid()), "--results", str(tmp_path / "r"), "--methods", "herding", "--ipc", "3",
               "--dry-run") == 0
    out = capsys.readouterr().out
    assert "methods=herding ipc=3" in out and "stage distill: 1 cells, 0 already done" in out
    assert not (tmp_path / "r").exists()  # a dry run writes nothing


def test_a_dry_run_on_fewer_threads_than_the_reference_scales_its_expectation(tmp_path, ci_grid, capsys):
    for threads, warned in (("1", True), ("2", False)):
        assert run("--grid", str(ci_grid()), "--results", str(tmp_path / "r"), "--device", "cpu", "--threads", threads,
                   "--dry-run") == 0
        out = capsys.readouterr().out
        assert ("1 torch thread(s) of the reference's 2: expect at least 2x the estimate" in out) is warned


def test_a_cpu_dry_run_of_the_paper_budget_points_at_the_cpu_presets(tmp_path, ci_grid, capsys):
    """A grid whose default is the GPU-length ``paper`` budget is a day-long run on a CPU: the plan says so."""
    for budget, warned in (("paper", True), ("cpu-small", False)):
        assert run("--grid", str(ci_grid()), "--results", str(tmp_path / "r"), "--device", "cpu", "--budget", budget,
                   "--dry-run") == 0
        out = capsys.readouterr().out
        assert f"budget={budget}" in out
        assert ("budget paper is the references' full length" in out) is warned


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path, ci_grid, monkeypatch, capsys):
    original = RandomCoreset.distill

    def flaky(self, task):
        if task.ipc == 2:
            raise RuntimeError("simulated divergence")
        return original(self, task)

    monkeypatch.setattr(RandomCoreset, "distill", flaky)
    results = tmp_path / "results"
    assert run("--grid", str(ci_grid(ipc=[1, 2])), "--results", str(results)) == 1
    captured = capsys.readouterr()
    assert "cells: 2 run, 0 already done, 2 failed" in captured.out
    assert "RuntimeError: simulated divergence" in captured.err
    assert "has no record: it failed or has not run" in captured.err  # the dependent evaluation
    failures = [json.loads(p.read_text()) for p in (results / "failures").glob("*.json")]
    assert len(failures) == 2 and "Traceback" in failures[0]["traceback"] + failures[1]["traceback"]
    assert "## Failed cells" in (results / "LEADERBOARD.md").read_text()

    monkeypatch.setattr(RandomCoreset, "distill", original)
    assert run("--grid", str(ci_grid(ipc=[1, 2])), "--results", str(results)) == 0  # a rerun retries failures
    assert not list((results / "failures").glob("*.json"))


@pytest.mark.parametrize("args,message", [
    (["--datasets", "mnsit"], "error: unknown dataset 'mnsit'"),
    (["--methods", "foo"], "error: unknown method 'foo'"),
    (["--archs", "resnet"], "error: unknown architecture 'resnet'"),
    (["--grid", "nope"], "error: unknown grid 'nope'"),
    (["--backend", "mpi"], "error: invalid --backend='mpi'"),
    (["--ipc", "0"], "error: invalid ipc=0"),
    (["--ipc", "1000"], "error: invalid ipc=1000: at most 139"),
    (["--ipc", "ten"], "error: --ipc: expected comma-separated integers"),
    (["--device", "tpu"], "error: invalid --device='tpu'"),
    (["--protocol", "fast"], "error: unknown protocol 'fast'"),
    (["--budget", "quick"], "error: invalid budget='quick': one of paper, cpu-small"),
    (["--models", "0"], "error: invalid --models=0"),
    (["--datasets", "npz:/no/such.npz"], "error: dataset npz:/no/such.npz: file not found"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, ci_grid, capsys, args, message):
    results = tmp_path / "results"
    grid = [] if "--grid" in args else ["--grid", str(ci_grid())]
    assert run("--results", str(results), *grid, *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err and "Traceback" not in err
    assert not results.exists()


def test_a_missing_cluster_package_only_stops_the_backend_that_needs_it(tmp_path, ci_grid, monkeypatch, capsys):
    """A machine without submitit or Ray (a lent GPU box) runs the local backend; choosing slurm says what is
    missing in one line."""
    for package in ("submitit", "ray"):
        monkeypatch.setitem(sys.modules, package, None)  # ``import submitit`` now fails as if not installed
    monkeypatch.delitem(sys.modules, "benchmark.backends.slurm", raising=False)
    assert run("--grid", str(ci_grid()), "--results", str(tmp_path / "r")) == 0
    capsys.readouterr()
    assert run("--grid", str(ci_grid()), "--results", str(tmp_path / "s"), "--backend", "slurm") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --backend slurm needs the package submitit") and "\n" not in err
    assert not (tmp_path / "s").exists()


def test_code_digest_follows_the_sources_and_nothing_else(tmp_path):
    for package in ("benchmark", "baselines", "d2m"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "mod.py").write_text(f"NAME = {package!r}\n")
    first = code_digest.__wrapped__(tmp_path)
    (tmp_path / "benchmark" / "notes.md").write_text("not code")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("x = 1\n")
    assert code_digest.__wrapped__(tmp_path) == first
    (tmp_path / "d2m" / "mod.py").write_text("NAME = 'changed'\n")
    assert code_digest.__wrapped__(tmp_path) != first


def test_corrupt_data_file_and_unwritable_results(tmp_path, ci_grid, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    assert run("--grid", str(ci_grid()), "--datasets", f"npz:{bad}", "--results", str(tmp_path / "r")) == 2
    assert "not a readable .npz file" in capsys.readouterr().err
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    assert run("--grid", str(ci_grid()), "--results", str(blocker / "sub")) == 2
    assert "is not writable" in capsys.readouterr().err


def test_cuda_graphs_without_cuda_is_refused_before_any_cell_runs(tmp_path, capsys):
    assert run("--cuda-graphs", "on", "--results", str(tmp_path / "r"), "--dry-run") == 2
    assert "cuda_graphs=on needs a CUDA device, not cpu" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_leaderboard_cli_rows_and_empty_store(tmp_path, ci_grid, capsys):
    results = tmp_path / "results"
    assert leaderboard.main([str(results)]) == 2
    assert "holds no results store" in capsys.readouterr().err
    assert run("--grid", str(ci_grid(methods=["random"], ipc=[1, 2])), "--results", str(results)) == 0
    capsys.readouterr()
    assert leaderboard.main([str(results), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["method"], r["ipc"], r["n"]) for r in rows] == [("random", 1, 1), ("random", 2, 1)]
    assert {"mean", "std", "distill_seconds", "storage_bytes", "eval_seconds"} <= set(rows[0])
    assert leaderboard.main([str(results), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("dataset,method,variant,ipc,arch,protocol,mean,std,n")


def test_a_set_distilled_from_another_copy_of_the_dataset_is_not_evaluated(tmp_path, ci_grid, capsys):
    results, grid = tmp_path / "results", str(ci_grid())
    assert run("--grid", grid, "--results", str(results)) == 0
    (distill,) = (results / "records" / "distill").glob("*.json")
    record = json.loads(distill.read_text())
    record["result"]["train_images"] = 900  # as if distilled in another store from a 900-image copy of digits
    distill.write_text(json.dumps(record))
    for evaluation in (results / "records" / "eval").glob("*.json"):
        evaluation.unlink()
    capsys.readouterr()
    assert run("--grid", grid, "--results", str(results)) == 1
    out = capsys.readouterr().out
    assert "cells: 0 run, 1 already done, 1 failed" in out
    assert ("train_images: its distillation (distill random digits ipc=1 seed=0) was made from 900 training images "
            "(sklearn.datasets.load_digits (bundled)), this run loads 1437") in out
    assert not list((results / "records" / "eval").glob("*.json"))

    shutil.rmtree(results / "artifacts")  # nor is its missing artifact rebuilt from these images in its name
    assert run("--grid", grid, "--results", str(results)) == 1
    out = capsys.readouterr().out
    assert "cells: 0 run, 0 already done, 2 failed" in out and "was made from 900 training images" in out
    assert json.loads(distill.read_text())["result"]["train_images"] == 900
    assert not list((results / "artifacts").glob("*/artifact.json"))


def test_a_clone_without_artifacts_regenerates_the_ones_a_new_evaluation_needs(tmp_path, ci_grid, capsys):
    """Records are committed, artifacts are not: evaluating a committed distillation on a new architecture in a
    fresh clone rebuilds its artifact (the new record keeps the old one), and leaves the others alone."""
    results = tmp_path / "results"
    assert run("--grid", str(ci_grid(methods=["random"], ipc=[1, 2], seeds=[0])), "--results", str(results)) == 0
    capsys.readouterr()
    shutil.rmtree(results / "artifacts")
    old = {p.name: json.loads(p.read_text()) for p in (results / "records" / "distill").glob("*.json")}

    assert run("--grid", str(ci_grid(methods=["random"], ipc=[1, 2], seeds=[0])), "--results", str(results)) == 0
    assert "cells: 0 run, 4 already done, 0 failed" in capsys.readouterr().out  # nothing new needs an artifact

    grid = ci_grid(methods=["random"], ipc=[2], seeds=[0], archs=["convnet", "mlp"])
    assert run("--grid", str(grid), "--results", str(results), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "1 cells, 0 already done" in out and "1 of the distillations to go have a record but no artifact" in out
    assert run("--grid", str(grid), "--results", str(results)) == 0
    assert "cells: 2 run, 1 already done, 0 failed" in capsys.readouterr().out
    new = {p.name: json.loads(p.read_text()) for p in (results / "records" / "distill").glob("*.json")}
    rebuilt = [name for name in new if "replaces" in new[name]]
    assert len(rebuilt) == 1 and new[rebuilt[0]]["replaces"] == old[rebuilt[0]]
    assert len(list((results / "artifacts").iterdir())) == 1
    # every record names the exact artifact: the new evaluation the regenerated one, the old one its predecessor
    key = rebuilt[0].removesuffix(".json")
    digest = ResultsStore(results).artifact_digest(key)
    assert new[rebuilt[0]]["result"]["artifact_sha256"] == digest
    assert old[rebuilt[0]]["result"]["artifact_sha256"] == new[rebuilt[0]]["replaces"]["result"]["artifact_sha256"]
    evals = [json.loads(p.read_text()) for p in (results / "records" / "eval").glob("*.json")]
    read = {r["config"]["arch"]: r["result"]["artifact_sha256"] for r in evals if r["config"]["distill_key"] == key}
    assert read["mlp"] == digest and read["convnet"] == old[rebuilt[0]]["result"]["artifact_sha256"]
