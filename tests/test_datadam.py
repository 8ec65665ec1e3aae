"""DataDAM: the attention-matching loss against a hand computation, the loop, and what it refuses."""

import dataclasses

import pytest
import torch

from baselines.datadam import DataDAMHparams, attention_matching_loss
from benchmark.data import load_dataset
from benchmark.distiller import Budget, DistillTask, get_distiller
from benchmark.errors import BenchmarkError


def test_loss_matches_a_hand_computation():
    # one layer, 2 classes; real: 2 images per class, synthetic: 1 per class; maps of 2 channels × 1×2
    real = torch.tensor([[[[3.0, 4.0]], [[0.0, 0.0]]], [[[0.0, 1.0]], [[0.0, 0.0]]],   # class 0: A = [.6,.8], [0,1]
                         [[[1.0, 0.0]], [[0.0, 0.0]]], [[[1.0, 0.0]], [[0.0, 0.0]]]])  # class 1: A = [1,0], [1,0]
    syn = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]], [[[0.0, -2.0]], [[0.0, 0.0]]]])  # A = [.7071,.7071], [0,1]
    real_embed = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])  # class means (2, 0), (0, 3)
    syn_embed = torch.tensor([[2.0, 1.0], [0.0, 0.0]])
    hp = DataDAMHparams()
    r = 0.5**0.5
    attention = (0.3 - r) ** 2 + (0.9 - r) ** 2 + (1.0 - 0.0) ** 2 + (0.0 - 1.0) ** 2
    embedding = 1.0 + 9.0
    expected = 100 * attention + 100 * 0.01 * embedding
    got = attention_matching_loss([real], [syn], real_embed, syn_embed, [2, 2], [1, 1], hp)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_defaults_follow_the_reference():
    spec = load_dataset("digits").spec
    method = get_distiller("datadam")
    paper = method.default_hparams(spec, 10, "paper")
    assert (paper.iterations, paper.lr_img, paper.batch_real, paper.task_balance, paper.momentum) == (
        20000, 1.0, 64, 0.01, 0.5)
    assert method.default_hparams(spec, 100, "paper").lr_img == 10.0
    assert method.default_hparams(spec, 10, "cpu-small").iterations < 100


def test_distillation_lowers_the_loss_and_keeps_the_shape(tmp_path):
    data = load_dataset("digits")
    method = get_distiller("datadam")
    hp = dataclasses.replace(method.default_hparams(data.spec, 2, "cpu-small"), batch_real=16)
    task = DistillTask(train=data.train, spec=data.spec, ipc=2, budget=Budget("cpu-small", max_iterations=4),
                       device=torch.device("cpu"), seed=0, hparams=hp, work_dir=tmp_path / "w", cache_dir=tmp_path)
    artifact = method.distill(task)
    s = artifact.synthesize(2, 0)
    assert s.x.shape == (20, 1, 8, 8) and s.y.tolist() == [c for c in range(10) for _ in range(2)]
    summary = artifact.summary()
    assert summary["iterations"] == 4 and summary["last_loss"] < summary["first_loss"]
    assert "flip" not in summary["dsa_strategy"]  # digits are not mirrored


def test_refuses_what_it_cannot_serve():
    spec = load_dataset("digits").spec
    with pytest.raises(BenchmarkError, match="invalid ipc=0"):
        get_distiller("datadam").check(spec, 0)
    with pytest.raises(BenchmarkError, match="invalid datadam.batch_real=0"):
        get_distiller("datadam").resolve_hparams(spec, 1, "paper", {"batch_real": 0})
