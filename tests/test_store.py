import json
import os

import pytest
import torch

from benchmark.distiller import LoadContext, PixelArtifact, SyntheticSet
from benchmark.errors import BenchmarkError
from benchmark.store import ResultsStore, atomic_write_text


def test_records_are_written_whole_and_found_by_key(tmp_path):
    store = ResultsStore(tmp_path)
    store.ensure_writable()
    store.write_failure("k1", {"error": "boom"})
    store.write_record("eval", "k1", {"key": "k1", "value": 1})
    assert store.has("eval", "k1") and store.done_keys("eval") == {"k1"}
    assert store.read_record("eval", "k1")["value"] == 1
    assert store.failures() == []  # a success clears the cell's failure
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "records" / "eval").iterdir())


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "records" / "eval" / "k.json"

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, json.dumps({"a": 1}))
    assert list(target.parent.iterdir()) == []


def test_artifacts_round_trip(tmp_path):
    store = ResultsStore(tmp_path)
    artifact = PixelArtifact(SyntheticSet(torch.randn(4, 1, 8, 8), torch.tensor([0, 0, 1, 1]), {"lr": 0.02}), 2)
    store.save_artifact("abc", artifact)
    loaded = store.load_artifact("abc", LoadContext(torch.device("cpu"), lambda: None))
    s = loaded.synthesize(2, 0)
    assert torch.equal(s.x, artifact.synthetic_set.x) and s.eval_hints == {"lr": 0.02}
    assert loaded.storage_bytes() == 4 * 64 * 4 + 4 * 8
    assert not [p for p in (tmp_path / "artifacts").iterdir() if p.name.startswith(".")]


def test_unwritable_results_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(BenchmarkError, match=f"results directory {blocker / 'r'} is not writable"):
        ResultsStore(blocker / "r").ensure_writable()


def test_unreadable_record_files_are_skipped(tmp_path):
    store = ResultsStore(tmp_path)
    store.write_record("eval", "good", {"key": "good"})
    (tmp_path / "records" / "eval" / "bad.json").write_text("{truncated")
    assert [r["key"] for r in store.records("eval")] == ["good"]
