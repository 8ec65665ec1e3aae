"""The paper-scale grids, the plan as a DAG, the cost model behind ``--dry-run``, and ``--shard I/N``."""

import json

import pytest

from benchmark.cells import expand
from benchmark.cost_model import distill_seconds, estimate, eval_seconds, format_hours
from benchmark.errors import BenchmarkError
from benchmark.grid import load_grid, parse_grid
from benchmark.run import main as run_main
from benchmark.shards import parse_shard, shard_plan
from benchmark.store import ResultsStore
from benchmarks.cost_model_check import compare, measured_rows
from benchmarks.cost_model_check import main as cost_model_check

FIFTEEN = {"mnist", "fashion_mnist", "kmnist", "svhn", "cifar10", "cifar100", "tiny_imagenet", "imagenette",
           "imagewoof", "imagefruit", "imageyellow", "imagemeow", "imagesquawk", "imagenet1k-64", "imagenet1k-128"}
METHODS = ("random", "herding", "kcenter", "full", "dc", "dsa", "dm", "datadam", "mtt", "dim", "d2m")
CORESETS = ["random", "herding", "kcenter", "full"]  # registered today; the grids also name the methods in flight


def run(*args: str) -> int:
    return run_main(["--no-progress", "--device", "cpu", *args])


def test_full_paper_and_cross_arch_grids_have_the_papers_scope():
    full, paper, cross = load_grid("full"), load_grid("paper"), load_grid("cross-arch")
    assert set(full.datasets) == FIFTEEN == set(paper.datasets) and full.methods == METHODS == paper.methods
    assert full.archs == ("convnet", "alexnet", "vgg11", "resnet18_bn", "resnet18", "vit", "mlp") and paper.archs == ("convnet",)
    assert set(cross.archs) == set(full.archs) and cross.datasets == ("cifar10",)
    for grid in (full, paper):
        assert grid.ipcs_for("cifar10") == (1, 10, 50) and grid.ipcs_for("imagenet1k-128") == (1, 10)
        assert grid.ipcs_for("imagewoof") == (1, 10) and grid.protocol == grid.budget == "paper"
        assert grid.seeds == (0, 1, 2) and grid.skip_unsupported


def test_full_grid_expands_into_a_dag_whose_edges_point_into_the_distill_stage():
    plan = expand(load_grid("full").with_axes(methods=CORESETS))
    # random/herding/kcenter: 13 datasets × 3 IPCs + 2 ImageNet-1K × 2 IPCs... per seed; full: one per dataset
    per_ipc = 7 * 3 + 8 * 2
    assert len(plan.distill_cells) == 3 * (3 * per_ipc + 15)
    assert len(plan.eval_cells) == 7 * len(plan.distill_cells)  # seven architectures per artifact
    distill_keys = {c.key for c in plan.distill_cells}
    assert all(c.distill.key in distill_keys for c in plan.eval_cells)
    assert [name for name, _ in plan.stages()] == ["distill", "eval"]
    assert sum(len(evals) for _, evals in plan.groups()) == len(plan.eval_cells)
    assert not any(c.ipc == 50 for c in plan.distill_cells if c.dataset.startswith("imagenet"))


def test_skip_unsupported_lists_what_a_method_refuses_instead_of_failing():
    data = {"datasets": ["digits"], "methods": ["random"], "ipc": [1, 140], "budget": "cpu-small"}
    with pytest.raises(BenchmarkError, match="invalid ipc=140: at most 139"):
        expand(parse_grid(data, "g", "g"))
    plan = expand(parse_grid({**data, "skip_unsupported": True}, "g", "g"))
    assert [c.ipc for c in plan.distill_cells] == [1]
    assert len(plan.unsupported) == 1 and plan.unsupported[0].startswith("random digits ipc=140: invalid ipc=140")


def test_cost_model_reproduces_its_calibration_points():
    dm = expand(parse_grid({"datasets": ["mnist"], "methods": ["random"], "ipc": [10]}, "g", "g")).distill_cells[0]
    # a DM iteration at IPC 10 on MNIST took 3.19 s on 2 threads (reference-runs §2)
    from dataclasses import replace
    dm = replace(dm, method="dm", hparams={"iterations": 1})
    assert 2.5 < distill_seconds(dm) < 4.0
    ev = expand(parse_grid({"datasets": ["mnist"], "methods": ["random"], "ipc": [10]}, "g", "g")).eval_cells[0]
    # the paper protocol at IPC 10: ~0.28 s per epoch × 1000 + a ~11 s test pass, per model, 5 models
    assert 1300 < eval_seconds(ev) < 1700
    cross = expand(parse_grid({"datasets": ["mnist"], "methods": ["random"], "ipc": [10], "archs": ["resnet18"]},
                              "g", "g")).eval_cells[0]
    assert eval_seconds(cross) > 5 * eval_seconds(ev)
    # on 8×8 digits the ConvNet shrinks with the pixels and VGG11 does not (measured 11× there, 1.8× at 32 px)
    digits = {arch: eval_seconds(expand(parse_grid({"datasets": ["digits"], "methods": ["random"], "ipc": [10],
                                                    "archs": [arch]}, "g", "g")).eval_cells[0])
              for arch in ("convnet", "vgg11", "mlp")}
    assert digits["vgg11"] > 8 * digits["convnet"] > 8 * digits["mlp"]
    assert format_hours(0.05) == "3 device-min" and format_hours(45678.4) == "45,678 device-h"


def test_cached_setups_are_costed_from_the_presets_hyper_parameters_once_per_dataset():
    def distill_hours(methods: list[str], budget: str) -> float:
        grid = parse_grid({"datasets": ["mnist"], "methods": methods, "ipc": [1, 10], "budget": budget}, "g", "g")
        return estimate(expand(grid))["distill"].hours()

    # MTT's buffer: 100 experts × 50 epochs at `paper`, 2 × 3 at `cpu-small` — the estimate must follow
    assert distill_hours(["mtt"], "paper") > 100 * distill_hours(["mtt"], "cpu-small")
    # herding and kcenter share one feature net per dataset: the pair costs less than twice one of them
    assert distill_hours(["herding", "kcenter"], "paper") < 1.5 * distill_hours(["herding"], "paper")
    # DiM's GAN is costed from its epochs: cpu-small's 10 are far below the paper's 150
    assert distill_hours(["dim"], "paper") > 5 * distill_hours(["dim"], "cpu-small")


def test_dry_run_prints_cells_done_and_estimated_hours_per_stage(tmp_path, ci_grid, capsys):
    results = tmp_path / "r"
    grid = str(ci_grid(methods=["random"], ipc=[1, 2]))
    assert run("--grid", grid, "--results", str(results), "--ipc", "1", "--no-report") == 0
    capsys.readouterr()
    assert run("--grid", grid, "--results", str(results), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "stage distill: 2 cells, 1 already done, ~" in out and "stage eval:    2 cells, 1 already done, ~" in out
    assert "device-min to go" in out and "an estimate on the 2-core reference CPU" in out
    overridden = str(ci_grid("[protocol_overrides]\nuse_set_lr = false\n", methods=["random"], ipc=[1]))
    assert run("--grid", overridden, "--results", str(results), "--dry-run") == 0
    assert "[use_set_lr: False]" in capsys.readouterr().out  # the plan says which protocol it will run
    assert run("--grid", "full", "--methods", ",".join(CORESETS), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "stage distill: 378 cells, 0 already done" in out and "stage eval:    2646 cells" in out
    assert estimate(expand(load_grid("full").with_axes(methods=CORESETS)))["eval"].hours() > 1000


@pytest.mark.parametrize("extra,message", [
    ("[ipc_by_dataset]\nimagnet1k-64 = [1]\n", "unknown dataset 'imagnet1k-64'"),
    ("[hparams.rnadom]\nx = 1\n", "unknown method 'rnadom'"),
    ("", "invalid grid"),
])
def test_a_grid_file_with_an_unknown_key_or_value_is_one_line_exit_2(tmp_path, ci_grid, capsys, extra, message):
    grid = ci_grid(extra) if extra else ci_grid(skip_unsupported="yes")
    assert run("--grid", str(grid), "--results", str(tmp_path / "r"), "--dry-run") == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_shards_partition_whole_distillations_deterministically():
    plan = expand(load_grid("full").with_axes(methods=CORESETS))
    shards = [shard_plan(plan, i, 4) for i in range(4)]
    keys = [{c.key for c in s.distill_cells} for s in shards]
    assert sum(map(len, keys)) == len(plan.distill_cells) and set().union(*keys) == {c.key for c in plan.distill_cells}
    for s in shards:  # every evaluation travels with its distillation
        assert {c.distill.key for c in s.eval_cells} <= {c.key for c in s.distill_cells}
    assert sum(len(s.eval_cells) for s in shards) == len(plan.eval_cells)
    assert [c.key for c in shard_plan(plan, 2, 4).distill_cells] == [c.key for c in shards[2].distill_cells]
    loads = [estimate(s)["distill"].seconds + estimate(s)["eval"].seconds for s in shards]
    assert max(loads) < 1.35 * min(loads)  # balanced by estimated cost, not by count


def test_shards_of_a_run_together_do_the_whole_grid(tmp_path, ci_grid, capsys):
    results, grid = tmp_path / "r", str(ci_grid(methods=["random"], ipc=[1, 2]))
    for i in range(2):
        assert run("--grid", grid, "--results", str(results), "--shard", f"{i}/2", "--no-report") == 0
        assert f"shard {i}/2: 2 of the grid's 4 cells" in capsys.readouterr().out
    records = [json.loads(p.read_text()) for p in (results / "records" / "eval").glob("*.json")]
    assert sorted(r["config"]["ipc"] for r in records) == [1, 2]
    assert run("--grid", grid, "--results", str(results), "--no-report") == 0
    assert "cells: 0 run, 4 already done, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/3", "0/0"])
def test_bad_shard_is_one_line_exit_2(tmp_path, ci_grid, capsys, text):
    assert run("--grid", str(ci_grid()), "--results", str(tmp_path / "r"), f"--shard={text}") == 2
    assert capsys.readouterr().err.startswith(f"error: invalid --shard='{text}'")
    assert parse_shard("3/16") == (3, 16)


def test_cost_model_check_compares_every_recorded_cell_with_its_estimate(tmp_path, ci_grid, capsys):
    results = tmp_path / "r"
    grid = str(ci_grid(methods=["random", "herding"], ipc=[1, 2]))
    assert run("--grid", grid, "--results", str(results), "--no-report", "--threads", "1") == 0
    rows = measured_rows(ResultsStore(results), "cpu")
    assert sorted((r["stage"], r["method"]) for r in rows) == sorted(
        [(stage, method) for stage in ("distill", "eval") for method in ("random", "herding") for _ in (1, 2)])
    table = compare(rows)
    herding = table[(table["stage"] == "distill") & (table["method"] == "herding")].iloc[0]
    assert herding["cells"] == 2 and herding["threads"] == "1" and herding["measured/estimated"] > 0
    assert sorted(table[table["stage"] == "eval"]["arch"]) == ["convnet", "convnet"]  # evaluation groups name their architecture
    assert herding["arch"] == "-"
    capsys.readouterr()
    assert cost_model_check(["--results", str(results), "--min-seconds", "0"]) == 0
    assert "measured/estimated" in capsys.readouterr().out
    assert cost_model_check(["--results", str(results), "--device", "cuda"]) == 1
