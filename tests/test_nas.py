"""``python -m benchmark.nas``: the search space, NAS cells as their own stage, a tiny run end to end."""

import json

import pytest

from benchmark import evaluate as evaluate_module
from benchmark import nas
from benchmark.cells import expand
from benchmark.errors import BenchmarkError
from benchmark.grid import load_grid
from benchmark.nas import FULL_SPACE, Candidate, NasSettings, nas_plan, search_space
from benchmark.protocol import EvalProtocol


def test_the_search_space_is_the_dc_papers_720_and_draws_are_seeded():
    space = search_space(10_000)
    assert FULL_SPACE == 720 and len(set(space)) == 720
    assert {c.act for c in space} == {"sigmoid", "relu", "leakyrelu"} and {c.width for c in space} == {32, 64, 128, 256}
    draw = search_space(24)
    assert draw == search_space(24) and len(set(draw)) == 24 and set(draw) <= set(space)
    assert draw != search_space(24, seed=1)
    with pytest.raises(BenchmarkError, match="invalid --space-size=0"):
        search_space(0)


def test_nas_cells_reuse_the_main_grids_distillations_and_have_their_own_stage():
    plan = nas_plan(["digits"], ["random"], [10], "cpu-small", [0], "cpu-small", space_size=3)
    main = expand(load_grid("smoke").with_axes(methods=["random", "full"], ipc=[10], seeds=[0]))
    assert {c.key for c in plan.distill_cells} == {c.key for c in main.distill_cells}  # same cells, reused
    assert len(plan.eval_cells) == 2 * 3 and {c.stage for c in plan.eval_cells} == {"nas"}
    cell = plan.eval_cells[0]
    assert cell.config()["candidate"] == cell.candidate.as_dict() == cell.model_kwargs
    assert cell.config()["protocol"]["name"] == "nas-cpu-small" and cell.config()["stage"] == "nas"
    assert len({c.key for c in plan.eval_cells}) == 6


def test_a_tiny_search_runs_records_resumes_and_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(nas.NAS_PRESETS, "cpu-small", NasSettings(space_size=3, epochs=2, full_data_epochs=1))
    cheap = [Candidate(32, 1, "batchnorm", "relu", "maxpooling"), Candidate(32, 2, "none", "sigmoid", "avgpooling"),
             Candidate(16, 1, "instancenorm", "leakyrelu", "maxpooling")]  # a width outside the space: any works
    monkeypatch.setattr(nas, "search_space", lambda size, seed: cheap[:size])
    built, real_build = [], evaluate_module.build_model

    def spy(name, spec, **kw):  # the networks trained are the candidates, not the registered ConvNet
        built.append((name, {k: v for k, v in kw.items() if k not in ("seed", "device")}))
        return real_build(name, spec, **kw)

    monkeypatch.setattr(evaluate_module, "build_model", spy)
    results = tmp_path / "results"
    args = ["--methods", "random", "--ipc", "2", "--results", str(results), "--device", "cpu", "--no-progress",
            "--threads", "1"]
    assert nas.main(args) == 0
    out = capsys.readouterr().out
    assert "nas: 3 candidates × 2 training sets; 2 distillations" in out and "cells: 8 run" in out
    records = [json.loads(p.read_text()) for p in (results / "records" / "nas").glob("*.json")]
    candidates = [Candidate(**r["config"]["candidate"]) for r in records]
    assert len(records) == 6 and set(candidates) == set(cheap)
    assert sorted(json.dumps(kw, sort_keys=True) for _, kw in built) == sorted(
        json.dumps(c.as_dict(), sort_keys=True) for c in candidates)
    assert {r["config"]["method"] for r in records} == {"random", "full"}
    table = next(line for line in out.splitlines() if line.startswith("| digits"))
    assert "| nas-cpu-small | random" in table and "| 3 " in table
    assert "Architecture search on distilled sets" in (results / "LEADERBOARD.md").read_text()
    assert nas.main([*args, "--no-report"]) == 0
    assert "cells: 0 run, 8 already done" in capsys.readouterr().out


def test_bad_nas_input_is_one_line(capsys):
    assert nas.main(["--preset", "huge", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == "error: invalid --preset='huge': one of paper, cpu-small"


def test_the_whole_set_side_trains_exactly_the_presets_epochs():
    """The paper protocol's 2,000-step floor for ``full`` would make each whole-set candidate cost hours."""
    protocol = EvalProtocol(**nas.nas_protocol("cpu-small", nas.NAS_PRESETS["cpu-small"]))
    assert protocol.whole_dataset_epochs(1437) == nas.NAS_PRESETS["cpu-small"].full_data_epochs  # digits: 6 steps/epoch
