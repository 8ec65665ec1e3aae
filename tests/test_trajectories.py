"""Cached training trajectories (MTT's expert buffer, DiM's pool): snapshots, reuse, rebuild, required caches."""

import threading

import pytest
import torch

from benchmark import blocking
from benchmark.data import InMemoryImages, load_dataset
from benchmark.errors import BenchmarkError
from benchmark.models import build_model
from benchmark.trajectories import TrainingRecipe, Trajectory, cached_trajectories, train_trajectory

RECIPE = TrainingRecipe(arch="convnet_w32", lr=0.01, momentum=0.0, weight_decay=0.0, batch_size=16,
                        augmentation="none", snapshot_steps=(0, 1, 3))


def tiny_digits(per_class: int = 4) -> InMemoryImages:
    data = load_dataset("digits")
    idx = torch.cat([data.train.indices_of_class(c)[:per_class] for c in range(10)])
    return InMemoryImages(data.train.pixels[idx], data.train.labels[idx], data.spec, "digits subset")


def test_snapshots_are_the_weights_after_those_sgd_steps():
    train = tiny_digits()
    trajectory = train_trajectory(train, RECIPE, seed=7, device=torch.device("cpu"))
    assert trajectory.steps == (0, 1, 3) and len(trajectory) == 3
    net = build_model("convnet_w32", train.spec)
    net.load_state_dict(trajectory.state_dict(0))
    vectors = trajectory.parameter_vectors(net)
    assert torch.equal(vectors[0], torch.nn.utils.parameters_to_vector(net.parameters()))
    moved = (vectors[1:] - vectors[:-1]).norm(dim=1)
    assert (moved > 0).all()  # every kept step changed the weights
    # 40 images in batches of 16: step 3 is the first batch of the second epoch
    assert trajectory.trimmed(2).steps == (0, 1) and trajectory.trimmed(2).snapshots["classifier.weight"].shape[0] == 2


def test_steps_in_cache_sized_pieces_keep_the_whole_batch_trajectory(monkeypatch):
    """An expert trained in pieces (4 digits each here) follows the whole-batch expert up to float rounding;
    a batch-norm network, whose batch statistics mix the images, is never split."""
    train, cpu = tiny_digits(), torch.device("cpu")
    works, original = [], blocking.pieces
    monkeypatch.setattr(blocking, "pieces", lambda *a: works.append(a[-1]) or original(*a))
    monkeypatch.setitem(blocking.CHUNK_PIXELS["cpu"], "train", 4 * 8 * 8)
    split = train_trajectory(train, RECIPE, seed=7, device=cpu)
    assert works == ["train"] * 3  # steps 1-3, each in pieces
    monkeypatch.setitem(blocking.CHUNK_PIXELS["cpu"], "train", 10**6)  # one piece: the whole batch
    whole = train_trajectory(train, RECIPE, seed=7, device=cpu)
    for name, stacked in whole.snapshots.items():
        assert torch.allclose(split.snapshots[name], stacked, rtol=1e-4, atol=1e-6), name
    works.clear()
    train_trajectory(train, TrainingRecipe(**{**RECIPE.__dict__, "arch": "convnet_bn"}), seed=7, device=cpu)
    assert works == []


def test_cache_is_reused_rebuilt_when_corrupt_and_required_on_request(tmp_path, capsys):
    train = tiny_digits()
    cpu = torch.device("cpu")
    messages: list[str] = []
    first, report = cached_trajectories(train, RECIPE, 2, tmp_path, cpu, kind="buffers", log=messages.append)
    assert (report["built_now"], report["reused"]) == (2, 0) and report["build_seconds_total"] > 0
    assert [m.split(" into ")[0] for m in messages] == [f"buffers: training convnet_w32 trajectory {i} of 2" for i in (1, 2)]
    again, report = cached_trajectories(train, RECIPE, 2, tmp_path, cpu, kind="buffers", log=messages.append)
    assert (report["built_now"], report["reused"]) == (2 - 2, 2) and len(messages) == 2  # a reuse says nothing
    assert all(torch.equal(a.snapshots[k], b.snapshots[k]) for a, b in zip(first, again, strict=True)
               for k in a.snapshots)
    assert not torch.equal(first[0].snapshots["classifier.weight"], first[1].snapshots["classifier.weight"])
    files = sorted((tmp_path / "buffers").glob("*/*.pt"))
    files[1].write_bytes(files[1].read_bytes()[:100])  # a truncated expert
    rebuilt, report = cached_trajectories(train, RECIPE, 2, tmp_path, cpu, kind="buffers")
    assert "fails its checksum" in capsys.readouterr().err and report["built_now"] == 1
    assert torch.equal(rebuilt[1].snapshots["classifier.weight"], first[1].snapshots["classifier.weight"])
    files[0].unlink()
    with pytest.raises(BenchmarkError, match=r"buffers .*0000.pt is missing or corrupt and a ready cache was required"):
        cached_trajectories(train, RECIPE, 2, tmp_path, cpu, kind="buffers", require=True)


def test_recipe_and_dataset_key_the_cache(tmp_path):
    train = tiny_digits()
    cpu = torch.device("cpu")
    cached_trajectories(train, RECIPE, 1, tmp_path, cpu)
    other = TrainingRecipe(**{**RECIPE.__dict__, "lr": 0.02})
    _, report = cached_trajectories(train, other, 1, tmp_path, cpu)
    assert report["built_now"] == 1
    _, report = cached_trajectories(tiny_digits(3), RECIPE, 1, tmp_path, cpu)
    assert report["built_now"] == 1


def test_bad_recipes_are_one_line_errors():
    with pytest.raises(BenchmarkError, match="snapshot_steps"):
        TrainingRecipe("convnet", 0.01, 0.0, 0.0, 16, "none", snapshot_steps=(3, 1))
    with pytest.raises(BenchmarkError, match="augment_mode"):
        TrainingRecipe("convnet", 0.01, 0.0, 0.0, 16, "none", snapshot_steps=(0,), augment_mode="mixup")
    assert isinstance(Trajectory((0,), {}, 0.0), Trajectory)


def test_two_runs_building_one_buffer_at_once_share_the_work(tmp_path):
    """Each trajectory is built under its own lock, so two runs that need the same buffer split it instead of
    each training all of it, and both end with the same trajectories."""
    train, cpu, reports = tiny_digits(), torch.device("cpu"), []

    def run():
        trajectories, report = cached_trajectories(train, RECIPE, 4, tmp_path, cpu, kind="buffers")
        reports.append((trajectories, report))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(report["built_now"] for _, report in reports) == 4
    (mine, _), (theirs, _) = reports
    for a, b in zip(mine, theirs, strict=True):
        assert a.steps == b.steps and all(torch.equal(a.snapshots[k], b.snapshots[k]) for k in a.snapshots)
