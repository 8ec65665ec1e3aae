"""Sizing a D2M grid to a time budget: the counts fit the seconds, land in the right methods, and run as a grid."""

import json

import pytest

from benchmark.cells import expand
from benchmark.errors import BenchmarkError
from benchmark.grid import load_grid
from benchmarks.d2m_fit import ROUND_TO, iterations_within, main, sized_grid

GRID = {"description": "g", "protocol": "paper", "budget": "paper", "datasets": ["cifar10", "digits"],
        "methods": ["random", "d2m-gen", "d2m", "d2m-scratch"], "ipc": [1, 10], "archs": ["convnet"],
        "seeds": [0], "hparams": {"d2m": {"temperature": 2.0}}}
COST = {"dataset": "digits", "budget": "paper", "device": "cuda:0", "pretrain_s_per_iteration": 0.05,
        "distill_s_per_iteration": 0.2}


def test_iterations_fit_the_seconds_in_whole_blocks_within_the_preset():
    assert iterations_within(100.0, 0.05, 5000) == 2000
    assert iterations_within(100.0, 0.07, 5000) == 1400  # 1428 fit: rounded down to a block
    assert iterations_within(1.0, 0.5, 5000) == ROUND_TO  # never less than one block
    assert iterations_within(1e6, 0.01, 5000) == 5000  # never more than the preset
    with pytest.raises(BenchmarkError, match="per-iteration cost"):
        iterations_within(10.0, 0.0, 5000)


def test_counts_go_to_the_methods_that_run_each_loop(tmp_path):
    text = sized_grid(GRID, COST, 300, 150, "REDUCED: sized")
    path = tmp_path / "sized.toml"
    path.write_text(text)
    grid = load_grid(str(path))
    assert grid.datasets == ("digits",)  # the dataset the cost was measured on
    assert grid.description.endswith("[REDUCED: sized]")
    assert grid.hparams == {"d2m": {"temperature": 2.0, "pretrain_iterations": 300, "iterations": 150},
                            "d2m-gen": {"pretrain_iterations": 300}, "d2m-scratch": {"iterations": 150}}
    distills = {c.method: c for c in expand(grid).distill_cells}
    assert distills["d2m"].hparams["iterations"] == 150  # the counts reach the cells (and their keys)
    assert distills["d2m"].hparams["pretrain_iterations"] == 300
    assert distills["d2m-gen"].hparams["pretrain_iterations"] == 300
    assert distills["d2m-scratch"].hparams["pretrain_iterations"] == 5000  # no pre-training: left at the preset


def test_a_cost_measured_elsewhere_is_refused():
    with pytest.raises(BenchmarkError, match="cost dataset"):
        sized_grid(GRID, {**COST, "dataset": "mnist"}, 100, 100, "n")
    with pytest.raises(BenchmarkError, match="cost budget"):
        sized_grid(GRID, {**COST, "budget": "cpu-small"}, 100, 100, "n")
    with pytest.raises(BenchmarkError, match="must not sweep"):
        sized_grid({**GRID, "sweep": {"d2m.temperature": [1.0]}}, COST, 100, 100, "n")


def test_command_line_writes_the_sized_grid_or_one_line(tmp_path, capsys):
    cost, grid, out = tmp_path / "cost.json", tmp_path / "grid.toml", tmp_path / "sized.toml"
    cost.write_text(json.dumps(COST))
    grid.write_text('budget = "paper"\ndatasets = ["digits"]\nmethods = ["d2m"]\nipc = [1]\n')
    assert main(["--cost", str(cost), "--grid", str(grid), "--pretrain-seconds", "100", "--distill-seconds",
                 "100", "--out", str(out)]) == 0
    assert load_grid(str(out)).hparams["d2m"] == {"pretrain_iterations": 2000, "iterations": 500}
    assert "2000 of 5000" in capsys.readouterr().out  # the digits paper preset: 5000 pre-training iterations
    cost.write_text(json.dumps({**COST, "budget": "cpu-small"}))
    assert main(["--cost", str(cost), "--grid", str(grid), "--pretrain-seconds", "1", "--distill-seconds", "1",
                 "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_measured_cost_sizes_a_grid_end_to_end(tmp_path):
    """d2m_cost's JSON (after an untimed warm-up) is what d2m_fit reads."""
    from benchmarks.d2m_cost import main as cost_main

    cost, grid, out = tmp_path / "cost.json", tmp_path / "grid.toml", tmp_path / "sized.toml"
    assert cost_main(["--dataset", "digits", "--budget", "cpu-small", "--pretrain-iterations", "2", "--iterations",
                      "1", "--warmup", "1", "--json", str(cost)]) == 0
    measured = json.loads(cost.read_text())
    assert measured["measured"] == {"pretrain": 2, "distill": 1}  # the warm-up is not counted
    assert measured["pretrain_s_per_iteration"] > 0 and measured["distill_s_per_iteration"] > 0
    grid.write_text('budget = "cpu-small"\ndatasets = ["digits"]\nmethods = ["d2m"]\nipc = [1]\n')
    assert main(["--cost", str(cost), "--grid", str(grid), "--pretrain-seconds", "1e6", "--distill-seconds", "1e6",
                 "--out", str(out)]) == 0
    assert load_grid(str(out)).hparams["d2m"] == {"pretrain_iterations": 300, "iterations": 60}  # the preset's


def test_a_second_distillation_length_on_the_same_generator(tmp_path, capsys):
    """``--distill-iterations`` with ``--methods d2m``: the same pre-training count (so the same cached generator),
    another distillation count, only the methods asked for; a count beyond the preset or a method the grid lacks
    is one line."""
    cost, grid, out = tmp_path / "cost.json", tmp_path / "grid.toml", tmp_path / "sized.toml"
    cost.write_text(json.dumps(COST))
    grid.write_text('budget = "paper"\ndatasets = ["digits"]\nmethods = ["random", "d2m-gen", "d2m"]\nipc = [1]\n'
                    '[hparams.d2m-gen]\ntemperature = 2.0\n')
    common = ["--cost", str(cost), "--grid", str(grid), "--pretrain-seconds", "100", "--out", str(out)]
    assert main([*common, "--distill-seconds", "100"]) == 0
    first = load_grid(str(out))
    assert main([*common, "--distill-iterations", "150", "--methods", "d2m"]) == 0
    second = load_grid(str(out))
    assert second.methods == ("d2m",) and set(second.hparams) == {"d2m"}
    assert second.hparams["d2m"] == {"pretrain_iterations": 2000, "iterations": 150}
    assert first.hparams["d2m"]["pretrain_iterations"] == second.hparams["d2m"]["pretrain_iterations"]
    assert "a distillation of 150 of 2000 iterations" in second.description
    capsys.readouterr()
    for bad in (["--distill-iterations", "2001"], ["--distill-iterations", "0"],
                ["--distill-iterations", "150", "--methods", "dm"]):
        assert main([*common, *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("--distill-iterations" in err or "methods" in err)
