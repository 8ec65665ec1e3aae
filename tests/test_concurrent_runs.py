"""Two runs on one results directory: cell locks, idempotent records, no stale failures, no lost cells."""

import dataclasses
import json
import os
import threading
import time

import pytest
import torch

from benchmark.backends import local
from benchmark.cells import expand
from benchmark.checkpoints import load_or_build
from benchmark.distiller import PixelArtifact, SyntheticSet
from benchmark.grid import load_grid
from benchmark.runner import RunContext, run_cell
from benchmark.store import ResultsStore


def test_a_claimed_cell_is_left_to_its_holder_and_freed_when_it_ends(tmp_path):
    store = ResultsStore(tmp_path)
    with store.claim("k") as first:
        with store.claim("k") as second:
            assert first and not second
        with store.claim("other") as unrelated:
            assert unrelated
    with store.claim("k") as again:
        assert again


def test_run_cell_is_busy_while_another_process_holds_the_cell(tmp_path):
    plan = expand(load_grid("smoke").with_axes(methods=["random"], ipc=[1], seeds=[0]))
    ctx = RunContext(results=tmp_path)
    cell = plan.distill_cells[0]
    with ctx.store.claim(cell.key):
        assert run_cell(cell, ctx).status == "busy"
    assert not ctx.store.has("distill", cell.key) and ctx.store.failures() == []


def test_a_cache_entry_needed_by_two_runs_at_once_is_built_once(tmp_path, capsys):
    """The second caller waits for the first one's build and loads it (threads stand in for processes: each
    call opens the lock file itself, and ``flock`` excludes open files, not processes)."""
    path, building, builds, first = tmp_path / "cache" / "entry.pt", threading.Event(), [], {}

    def slow_build():
        builds.append("first")
        building.set()
        time.sleep(0.5)
        return {"x": torch.arange(3)}

    thread = threading.Thread(target=lambda: first.update(result=load_or_build(path, slow_build)))
    thread.start()
    assert building.wait(10)
    second = load_or_build(path, lambda: builds.append("second") or {"x": torch.zeros(3)})
    thread.join()
    assert builds == ["first"] and first["result"].built_now and not second.built_now
    assert torch.equal(second.value["x"], torch.arange(3))
    assert first["result"].waited_seconds == 0.0 and 0.2 < second.waited_seconds < 10  # the build's sleep, waited
    assert "being built by another process; waiting for it" in capsys.readouterr().err


def test_a_build_that_fails_leaves_the_cache_entry_to_the_next_caller(tmp_path):
    path = tmp_path / "entry.pt"

    def crash():
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        load_or_build(path, crash)
    assert not path.exists()
    assert load_or_build(path, lambda: {"x": 1}) == ({"x": 1}, True, 0.0)
    assert load_or_build(path, crash) == ({"x": 1}, False, 0.0)


def test_an_intact_cache_entry_loads_where_no_lock_file_can_be_made(tmp_path, monkeypatch):
    """A cache shared read-only (a prepared buffer on a cluster) still serves what it holds."""
    path = tmp_path / "entry.pt"
    load_or_build(path, lambda: {"x": 1})
    real_open = os.open

    def read_only(name, *args, **kwargs):
        if str(name).endswith(".lock"):
            raise PermissionError(13, "Read-only file system", str(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert load_or_build(path, lambda: {"x": 2}) == ({"x": 1}, False, 0.0)


def test_a_late_failure_of_a_cell_that_has_a_record_is_not_kept_or_listed(tmp_path):
    store = ResultsStore(tmp_path)
    store.write_record("eval", "k", {"key": "k"})
    store.write_failure("k", {"key": "k", "stage": "eval", "error": "a twin crashed"})
    assert not (tmp_path / "failures" / "k.json").exists()
    (tmp_path / "failures").mkdir(exist_ok=True)
    (tmp_path / "failures" / "k.json").write_text(json.dumps({"key": "k", "error": "written before the record"}))
    assert store.failures() == []


def test_a_twin_saving_the_same_artifact_second_keeps_the_first(tmp_path):
    store = ResultsStore(tmp_path)
    first = PixelArtifact(SyntheticSet(torch.zeros(2, 1, 8, 8), torch.tensor([0, 1])), 1)
    twin = PixelArtifact(SyntheticSet(torch.ones(2, 1, 8, 8), torch.tensor([0, 1])), 1)
    store.save_artifact("a", first)
    store.save_artifact("a", twin)  # the rename loses to the existing directory: no error, nothing mixed
    saved = torch.load(tmp_path / "artifacts" / "a" / "synthetic_set.pt", weights_only=True)
    assert saved["x"].sum() == 0 and [p.name for p in (tmp_path / "artifacts").iterdir()] == ["a"]


def test_two_runs_at_once_compute_every_cell_exactly_once(tmp_path):
    grid = load_grid("smoke").with_axes(methods=["random"], ipc=[1, 2, 3], seeds=[0])
    plan = expand(dataclasses.replace(grid, protocol="ci"))
    ctx = RunContext(results=tmp_path)
    summaries = []
    runs = [threading.Thread(target=lambda: summaries.append(local.run(plan, ctx))) for _ in range(2)]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    assert sum(s.done for s in summaries) == len(plan) == 6  # nothing computed twice...
    assert all(not s.failed for s in summaries)
    assert ctx.store.done_keys("eval") == {c.key for c in plan.eval_cells}  # ...nothing lost
    assert ctx.store.done_keys("distill") == {c.key for c in plan.distill_cells}
    for path in (tmp_path / "records").rglob("*.json"):
        assert json.loads(path.read_text())["key"] == path.stem
