import dataclasses
from pathlib import Path

import pytest

from benchmark.cells import RESULTS_VERSION, expand
from benchmark.errors import BenchmarkError
from benchmark.grid import builtin_grid_names, load_grid, parse_grid


def test_builtin_smoke_grid_matches_the_issue():
    grid = load_grid("smoke")
    assert grid.datasets == ("digits",) and grid.ipc == (1, 10, 50) and grid.seeds == (0, 1, 2)
    assert {"random", "herding", "kcenter", "full"} <= set(grid.methods)
    assert grid.protocol == "smoke" and grid.budget == "cpu-small"
    assert "smoke" in builtin_grid_names()


def test_axes_replace_the_grid_axes_and_expand_into_a_two_stage_plan():
    grid = load_grid("smoke").with_axes(methods=["random", "full"], ipc=[1, 10], seeds=[0, 1])
    plan = expand(grid)
    # random: one distillation per (ipc, seed); full: one per seed, evaluated once (IPC-independent)
    assert len(plan.distill_cells) == 2 * 2 + 2
    assert len(plan.eval_cells) == 2 * 2 + 2
    full_evals = [c for c in plan.eval_cells if c.distill.method == "full"]
    assert all(c.ipc is None for c in full_evals)
    keys = [c.key for c in plan.distill_cells + plan.eval_cells]
    assert len(set(keys)) == len(keys)


def test_keys_hash_the_whole_config():
    a = expand(load_grid("smoke").with_axes(methods=["herding"], ipc=[1], seeds=[0])).distill_cells[0]
    b = expand(parse_grid({"datasets": ["digits"], "methods": ["herding"], "ipc": [1], "seeds": [0],
                           "budget": "cpu-small", "hparams": {"herding": {"feature_epochs": 3}}}, "g", "g")).distill_cells[0]
    assert a.key != b.key and b.hparams["feature_epochs"] == 3
    assert a.config()["results_version"] == RESULTS_VERSION
    assert a.key == expand(load_grid("smoke").with_axes(methods=["herding"], ipc=[1], seeds=[0])).distill_cells[0].key


def test_sweep_axes_multiply_a_methods_cells():
    grid = parse_grid({"datasets": ["digits"], "methods": ["herding", "random"], "ipc": [1], "budget": "cpu-small",
                       "sweep": {"herding.feature_epochs": [1, 2, 3]}}, "g", "g")
    plan = expand(grid)
    assert sorted(c.hparams.get("feature_epochs", -1) for c in plan.distill_cells) == [-1, 1, 2, 3]


@pytest.mark.parametrize("data,message", [
    ({"datasets": ["digits"], "methods": ["random"], "ipcs": [1]}, "unknown key \\['ipcs'\\]"),
    ({"methods": ["random"]}, "missing required key 'datasets'"),
    ({"datasets": ["digits"], "methods": ["random"], "ipc": [0]}, "invalid grid g: ipc=0"),
    ({"datasets": ["digits"], "methods": ["random"], "ipc": "10"}, "'ipc' must be a non-empty list of ints"),
    ({"datasets": ["digits"], "methods": ["random"], "sweep": {"temperature": [1]}}, "must be written 'method.hyper"),
    ({"datasets": ["digits"], "methods": ["random"], "protocol_overrides": 3}, "must be a table of protocol values"),
])
def test_bad_grid_files_are_one_line_errors(data, message):
    with pytest.raises(BenchmarkError, match=message):
        parse_grid(data, "g", "g")


@pytest.mark.parametrize("axes,message", [
    ({"datasets": ["mnsit"]}, "unknown dataset 'mnsit'"),
    ({"methods": ["rand"]}, "unknown method 'rand'"),
    ({"archs": ["resnet"]}, "unknown architecture 'resnet'"),
    ({"ipc": [140]}, "invalid ipc=140: at most 139"),
    ({"ipc": [-1]}, "invalid ipc=-1"),
])
def test_plan_validation_errors(axes, message):
    with pytest.raises(BenchmarkError, match=message):
        expand(load_grid("smoke").with_axes(**axes))


def test_protocol_overrides_reach_every_evaluation_cell_and_bad_ones_are_one_line_errors():
    grid = parse_grid({"datasets": ["digits"], "methods": ["random"], "ipc": [1], "protocol": "ci",
                       "protocol_overrides": {"use_set_lr": False, "epochs": 3}}, "g", "g")
    (cell,) = expand(grid).eval_cells
    assert cell.protocol["use_set_lr"] is False and cell.protocol["epochs"] == 3 and cell.protocol["name"] == "ci"
    (plain,) = expand(dataclasses.replace(grid, protocol_overrides={})).eval_cells
    assert "use_set_lr" not in plain.protocol and plain.key != cell.key
    with pytest.raises(BenchmarkError, match="unknown protocol override \\['set_lr'\\]; allowed: .*use_set_lr"):
        expand(dataclasses.replace(grid, protocol_overrides={"set_lr": False}))


def test_unknown_hyperparameter_and_grid():
    with pytest.raises(BenchmarkError, match="method herding: unknown hyper-parameter \\['epochs'\\]; allowed: feature"):
        expand(parse_grid({"datasets": ["digits"], "methods": ["herding"], "hparams": {"herding": {"epochs": 1}}},
                          "g", "g"))
    with pytest.raises(BenchmarkError, match="unknown grid 'smok' \\(did you mean smoke"):
        load_grid("smok")


def test_one_at_a_time_sweeps_vary_each_axis_alone():
    from benchmark.cells import sweep_variants

    data = {"datasets": ["digits"], "methods": ["m"], "hparams": {"m": {"lr": 0.1}},
            "sweep": {"m.temperature": [1.0, 4.0], "m.batch_real": [32, 64, 128]}}
    product = sweep_variants(parse_grid(data, "g", "g"), "m")
    assert len(product) == 6 and {"lr": 0.1, "temperature": 4.0, "batch_real": 32} in product
    alone = sweep_variants(parse_grid({**data, "sweep_mode": "one-at-a-time"}, "g", "g"), "m")
    assert alone == [{"lr": 0.1, "temperature": 1.0}, {"lr": 0.1, "temperature": 4.0}, {"lr": 0.1, "batch_real": 32},
                     {"lr": 0.1, "batch_real": 64}, {"lr": 0.1, "batch_real": 128}]


@pytest.mark.parametrize("data,message", [
    ({"sweep_mode": "grid"}, "invalid grid g: sweep_mode='grid': one of product, one-at-a-time"),
    ({"sweep": {"sweep_mode": "one-at-a-time"}}, "sweep_mode is a top-level key; write it above the \\[sweep\\]"),
])
def test_bad_sweep_modes_are_one_line_errors(data, message):
    with pytest.raises(BenchmarkError, match=message):
        parse_grid({"datasets": ["digits"], "methods": ["random"], **data}, "g", "g")


def test_shipped_sensitivity_grids_sweep_the_papers_axes_one_at_a_time():
    paper, cpu = load_grid("d2m-sensitivity"), load_grid("d2m-sensitivity-cpu")
    assert paper.datasets == ("cifar10",) and paper.ipc == (10,) and paper.sweep_mode == "one-at-a-time"
    assert paper.sweep == {"d2m.temperature": (1.0, 2.0, 4.0, 8.0), "d2m.task_balance": (0.0, 1.0, 10.0, 100.0),
                           "d2m.batch_real": (32, 64, 128, 256)}
    assert cpu.budget == "cpu-small" and cpu.datasets == ("digits",) and set(cpu.sweep) == set(paper.sweep)
    assert {"random", "full"} <= set(paper.methods) & set(cpu.methods)  # gains over random, fraction of full


EXPERIMENT_GRIDS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))


@pytest.mark.parametrize("path", EXPERIMENT_GRIDS, ids=lambda p: p.name)
def test_every_committed_experiment_grid_loads_and_expands(path):
    """The grids the evidence documents tell readers to run parse, name registered methods and expand."""
    plan = expand(load_grid(str(path)))
    assert plan.distill_cells and plan.eval_cells
