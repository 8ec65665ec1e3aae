"""MTT: the unrolled student is plain SGD, the loss, the readme table, the cached buffer, hints and refusals."""

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from baselines.mtt import table_row, trajectory_matching_loss, unrolled_student
from benchmark.data import InMemoryImages, dataset_spec, load_dataset
from benchmark.distiller import Budget, DistillTask, get_distiller
from benchmark.errors import BenchmarkError
from benchmark.models import build_model


def test_unrolled_student_reproduces_plain_sgd_steps():
    spec = dataset_spec("digits")
    net = build_model("convnet_w32", spec, seed=0)
    start = torch.nn.utils.parameters_to_vector(net.parameters()).detach()
    images, labels = torch.randn(6, *spec.shape), torch.arange(6) % 10
    lr = torch.tensor(0.05, requires_grad=True)
    end = unrolled_student(net, start, images, labels, lr, steps=4, batch_size=4, augment=lambda x: x,
                           order=torch.Generator().manual_seed(3))

    reference = copy.deepcopy(net)
    sgd = torch.optim.SGD(reference.parameters(), lr=0.05)
    order, chunks = torch.Generator().manual_seed(3), []
    for _ in range(4):  # chunks of a permutation, taken from its end, then a fresh permutation
        if not chunks:
            chunks = list(torch.randperm(6, generator=order).split(4))
        index = chunks.pop()
        sgd.zero_grad()
        F.cross_entropy(reference(images[index]), labels[index]).backward()
        sgd.step()
    assert torch.allclose(end, torch.nn.utils.parameters_to_vector(reference.parameters()), atol=1e-6)
    grad_lr, = torch.autograd.grad(end.square().sum(), lr)
    assert torch.isfinite(grad_lr) and grad_lr != 0  # the step size is learnable through the unroll


def test_loss_is_normalised_by_the_expert_progress():
    start, target = torch.zeros(3), torch.tensor([2.0, 0.0, 0.0])
    assert trajectory_matching_loss(torch.tensor([1.0, 1.0, 0.0]), start, target).item() == pytest.approx(0.5)
    assert trajectory_matching_loss(target, start, target).item() == 0.0


def test_settings_follow_the_readme_table():
    cifar10, cifar100 = dataset_spec("cifar10"), dataset_spec("cifar100")
    assert dataclasses.astuple(table_row(cifar10, 1)) == (50, 2, 2, 0, True, 1000.0, 1e-7)
    assert table_row(cifar10, 10).max_start_epoch == 20 and table_row(cifar10, 20) == table_row(cifar10, 10)
    assert table_row(cifar10, 50).zca is False
    assert (table_row(cifar100, 50).syn_steps, table_row(cifar100, 50).batch_syn) == (80, 125)
    assert table_row(dataset_spec("tiny_imagenet"), 10).lr_img == 1e4
    assert table_row(dataset_spec("mnist"), 1).zca is False and table_row(dataset_spec("mnist"), 1).syn_steps == 50
    paper = get_distiller("mtt").default_hparams(cifar10, 1, "paper")
    assert (paper.iterations, paper.num_experts, paper.train_epochs, paper.lr_teacher, paper.zca) == (
        5000, 100, 50, 0.01, True)


def tiny_task(tmp_path, **overrides) -> DistillTask:
    data = load_dataset("digits")
    idx = torch.cat([data.train.indices_of_class(c)[:6] for c in range(10)])
    train = InMemoryImages(data.train.pixels[idx], data.train.labels[idx], data.spec, "digits subset")
    method = get_distiller("mtt")
    small = {"num_experts": 1, "train_epochs": 2, "max_start_epoch": 1, "expert_epochs": 1, "syn_steps": 2,
             "batch_syn": 10, "expert_batch": 30, "arch": "mlp", "lr_lr": 1e-9, **overrides}
    hp = method.resolve_hparams(data.spec, 1, "cpu-small", small)
    return DistillTask(train=train, spec=data.spec, ipc=1, budget=Budget("cpu-small", max_iterations=2),
                       device=torch.device("cpu"), seed=0, hparams=hp, work_dir=tmp_path / "work",
                       cache_dir=tmp_path / "cache")


def test_distillation_records_learned_lr_whitening_and_the_buffer_stage(tmp_path):
    method = get_distiller("mtt")
    artifact = method.distill(tiny_task(tmp_path, zca=True))
    s = artifact.synthesize(1, 0)
    summary = artifact.summary()
    assert s.eval_hints["zca"] == {"eps": 0.1} and s.eval_hints["lr"] == summary["learned_lr"] > 0
    assert summary["buffer"]["built_now"] == 1 and summary["iterations"] == 2
    assert s.x.shape == (10, 1, 8, 8)
    again = method.distill(tiny_task(tmp_path / "second", zca=True, require_buffer=False))
    assert again.summary()["buffer"]["built_now"] == 1  # another cache directory: built there
    reused = method.distill(tiny_task(tmp_path, zca=True, require_buffer=True))
    assert reused.summary()["buffer"]["reused"] == 1 and reused.summary()["buffer"]["build_seconds_now"] == 0
    assert torch.equal(reused.synthesize(1, 0).x, s.x)  # same seed, same buffer: the same set


def test_a_required_buffer_that_is_missing_is_a_one_line_error(tmp_path):
    with pytest.raises(BenchmarkError, match="mtt_buffers .* is missing or corrupt and a ready cache was required"):
        get_distiller("mtt").distill(tiny_task(tmp_path, require_buffer=True))


def test_refuses_what_it_cannot_serve():
    method = get_distiller("mtt")
    with pytest.raises(BenchmarkError, match="mtt cannot serve imagenet1k-64"):
        method.check(dataset_spec("imagenet1k-64"), 1)
    with pytest.raises(BenchmarkError, match="invalid ipc=0"):
        method.check(dataset_spec("digits"), 0)
    with pytest.raises(BenchmarkError, match=r"invalid mtt.train_epochs=2: at least max_start_epoch \+ expert_epochs"):
        method.resolve_hparams(dataset_spec("digits"), 1, "paper", {"train_epochs": 2})
