"""DC, DSA and DM: the reference's tables and defaults, the matching steps on digits, batching, seeds,
resume, divergence and the errors for what a method cannot serve."""

import dataclasses

import pytest
import torch

from baselines import dc as dc_module
from baselines import dm as dm_module
from baselines.dc import GradientMatching, dc_loops, freeze_batchnorm_statistics
from baselines.dm import DistributionMatching, readme_lr_img
from benchmark import blocking
from benchmark.augment import dsa_siamese
from benchmark.data import dataset_spec, load_dataset
from benchmark.distiller import Budget, DistillTask, NeedsRedistillation, get_distiller, list_distillers
from benchmark.errors import BenchmarkError
from benchmark.iterate import DivergedError
from benchmark.matching import fresh_network

CPU = torch.device("cpu")
TINY = {"arch": "convnet_d1", "batch_real": 8}  # a one-block network and small real batches: fast tests


def make_task(tmp_path, method, ipc, seed=0, max_iterations=None, work="w", **overrides):
    data = load_dataset("digits")
    hparams = get_distiller(method).resolve_hparams(data.spec, ipc, "cpu-small", overrides)
    return DistillTask(train=data.train, spec=data.spec, ipc=ipc, budget=Budget("cpu-small", max_iterations),
                       device=CPU, seed=seed, hparams=hparams, work_dir=tmp_path / work, cache_dir=tmp_path / "c")


def test_methods_are_registered():
    assert {"dc", "dsa", "dm"} <= set(list_distillers())


def test_dc_loops_are_the_reference_table_and_other_ipcs_are_one_line_errors():
    assert dc_loops(1) == (1, 1) and dc_loops(10) == (10, 50) and dc_loops(50) == (50, 10)
    spec = dataset_spec("mnist")
    for method in ("dc", "dsa"):
        hp = get_distiller(method).resolve_hparams(spec, 10, "paper")
        assert (hp.outer_loop, hp.inner_loop, hp.iterations, hp.lr_img, hp.lr_net) == (10, 50, 1000, 0.1, 0.01)
        with pytest.raises(BenchmarkError, match=r"invalid ipc=5: .*IPC 1, 10, 20, 30, 40, 50") as err:
            get_distiller(method).check(spec, 5)
        assert "\n" not in str(err.value)
    get_distiller("dm").check(spec, 5)  # DM has no loop table


def test_check_refuses_ipcs_no_class_can_supply():
    spec = dataset_spec("digits")
    for method in ("dc", "dsa", "dm"):
        with pytest.raises(BenchmarkError, match="invalid ipc=0"):
            get_distiller(method).check(spec, 0)
    with pytest.raises(BenchmarkError, match="at most 139"):
        get_distiller("dm").check(spec, 140)


def test_defaults_follow_the_reference_scripts_per_dataset():
    mnist, cifar10, cifar100 = dataset_spec("mnist"), dataset_spec("cifar10"), dataset_spec("cifar100")
    dc, dsa, dm = (get_distiller(m) for m in ("dc", "dsa", "dm"))
    assert (dc.resolve_hparams(mnist, 1, "paper").init, dc.resolve_hparams(mnist, 1, "paper").dsa_strategy) == (
        "noise", "none")
    assert dc.resolve_hparams(mnist, 10, "cpu-small").init == "real"  # the CPU budget's named departure
    assert dsa.resolve_hparams(mnist, 1, "paper").dsa_strategy == "color_crop_cutout_scale_rotate"  # no flip
    assert dsa.resolve_hparams(cifar10, 1, "paper").dsa_strategy == "color_crop_cutout_flip_scale_rotate"
    assert dsa.resolve_hparams(cifar10, 1, "paper").init == "real"
    hp = dm.resolve_hparams(cifar10, 10, "paper")
    assert (hp.iterations, hp.lr_img, hp.momentum_img, hp.batch_real, hp.init) == (20000, 1.0, 0.5, 256, "real")
    assert readme_lr_img(cifar10, 100) == 10.0 and readme_lr_img(cifar100, 100) == 1.0
    assert dm.resolve_hparams(mnist, 1, "cpu-small").iterations < hp.iterations
    with pytest.raises(BenchmarkError, match="invalid init='zeros'"):
        dm.resolve_hparams(mnist, 1, "paper", {"init": "zeros"})
    with pytest.raises(BenchmarkError, match="unknown architecture"):
        dc.resolve_hparams(mnist, 1, "paper", {"arch": "convnet_xx"})


def test_a_gradient_matching_step_decreases_the_matching_loss_on_digits(tmp_path):
    task = make_task(tmp_path, "dc", 1, **TINY)
    matching = GradientMatching(task)
    net = fresh_network("convnet_d1", task.spec, matching.generators["networks"], CPU)
    weights = [p for p in net.parameters() if p.ndim > 1]
    real_stream = matching.generators["real-batches"].get_state()
    before = matching.match(net, weights)  # distance at the initial images, then one update
    matching.generators["real-batches"].set_state(real_stream)  # the same real batches again
    after = matching.match(net, weights)
    assert after < before - 1e-3


def test_dm_batched_loss_equals_the_per_class_reference_formula(tmp_path, monkeypatch):
    monkeypatch.setitem(blocking.CHUNK_PIXELS["cpu"], "forward", 7 * 8 * 8)  # real images embedded 7 at a time
    task = make_task(tmp_path, "dm", 3, arch="convnet_d2", batch_real=10)
    matching = DistributionMatching(task)
    net = fresh_network("convnet_d2", task.spec, torch.Generator().manual_seed(1), CPU)
    reals = [task.train.images_of_class(c, 10, torch.Generator().manual_seed(c)) for c in range(10)]
    dsa_stream = matching.generators["dsa"].get_state()
    batched = matching.loss(net, reals)
    (grad_batched,) = torch.autograd.grad(batched, matching.images)

    matching.generators["dsa"].set_state(dsa_stream)
    per_class = torch.zeros(())
    for c in range(10):  # reference main_DM.py: one augmentation draw and two forwards per class
        real, syn = dsa_siamese([reals[c], matching.images[3 * c : 3 * c + 3]], task.hparams.dsa_strategy,
                                matching.generators["dsa"])
        per_class = per_class + ((net.embed(real).mean(0) - net.embed(syn).mean(0)) ** 2).sum()
    (grad_per_class,) = torch.autograd.grad(per_class, matching.images)
    assert batched.item() == pytest.approx(per_class.item(), rel=1e-4)
    assert (grad_batched - grad_per_class).abs().max() <= 1e-4 * grad_per_class.abs().max()


def test_batchnorm_statistics_come_from_real_images_and_are_frozen():
    spec = dataset_spec("digits")
    net = fresh_network("convnet_bn", spec, torch.Generator().manual_seed(0), CPU)
    real = load_dataset("digits").train.images_of_class(3, 16, torch.Generator().manual_seed(0))
    bn = net.features[0][1]
    before = bn.running_mean.clone()
    freeze_batchnorm_statistics(net, real)
    batch_mean = net.features[0][0](real).mean(dim=(0, 2, 3))
    assert not bn.training and torch.allclose(bn.running_mean, 0.9 * before + 0.1 * batch_mean, atol=1e-5)
    one = net(real[:1])  # eval-mode batch norm: a single image is normalised by the frozen statistics
    assert torch.allclose(one, net(real)[:1], atol=1e-5)


@pytest.mark.parametrize(("method", "ipc"), [("dc", 1), ("dsa", 1), ("dm", 10)])
def test_distillation_is_seeded_and_yields_an_ipc_specific_pixel_artifact(tmp_path, method, ipc):
    runs = [get_distiller(method).distill(make_task(tmp_path, method, ipc, seed, 2, f"w{i}", **TINY))
            for i, seed in enumerate((0, 0, 1))]
    a, b, other = (r.synthesize(ipc, 0) for r in runs)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, other.x)
    assert a.y.tolist() == [c for c in range(10) for _ in range(ipc)] and a.x.shape == (10 * ipc, 1, 8, 8)
    summary = runs[0].summary()
    assert summary["iterations"] == 2 and summary["ipc"] == ipc and len(summary["loss_log"]) == 2
    with pytest.raises(NeedsRedistillation):
        runs[0].synthesize(ipc + 1, 0)


def test_dc_learns_without_augmentation_and_dsa_with_it(tmp_path, monkeypatch):
    calls = []
    real_dsa, real_siamese = dc_module.dsa, dc_module.dsa_siamese
    monkeypatch.setattr(dc_module, "dsa", lambda *a, **k: calls.append("inner") or real_dsa(*a, **k))
    monkeypatch.setattr(dc_module, "dsa_siamese", lambda *a, **k: calls.append("siamese") or real_siamese(*a, **k))
    overrides = {**TINY, "outer_loop": 2, "inner_loop": 1}
    get_distiller("dc").distill(make_task(tmp_path, "dc", 10, max_iterations=1, work="dc", **overrides))
    assert calls == []
    get_distiller("dsa").distill(make_task(tmp_path, "dsa", 10, max_iterations=1, work="dsa", **overrides))
    assert calls.count("siamese") == 20 and calls.count("inner") == 1  # 10 classes × 2 updates; 1 batch


@pytest.mark.parametrize("method", ["dsa", "dm"])
def test_a_killed_distillation_resumes_to_the_same_images(tmp_path, monkeypatch, method):
    monkeypatch.setattr(dc_module, "CHECKPOINT_EVERY", 1)
    monkeypatch.setattr(dm_module, "CHECKPOINT_EVERY", 1)
    overrides = {**TINY, "outer_loop": 2, "inner_loop": 1} if method == "dsa" else TINY
    whole = get_distiller(method).distill(make_task(tmp_path, method, 10, 0, 3, "whole", **overrides))
    step_class = GradientMatching if method == "dsa" else DistributionMatching
    original = step_class.step

    def killed(self, it):
        if it == 2:
            raise KeyboardInterrupt
        return original(self, it)

    monkeypatch.setattr(step_class, "step", killed)
    with pytest.raises(KeyboardInterrupt):
        get_distiller(method).distill(make_task(tmp_path, method, 10, 0, 3, "killed", **overrides))
    monkeypatch.setattr(step_class, "step", original)
    resumed = get_distiller(method).distill(make_task(tmp_path, method, 10, 0, 3, "killed", **overrides))
    assert resumed.summary()["resumed_from"] == 2
    assert torch.allclose(resumed.synthesize(10, 0).x, whole.synthesize(10, 0).x, atol=1e-6)


def test_divergence_is_a_diverged_error_naming_the_iteration(tmp_path):
    task = make_task(tmp_path, "dm", 1, max_iterations=5, **{**TINY, "lr_img": 1e38})
    with pytest.raises(DivergedError, match=r"loss is (nan|inf) at iteration [1-4]"):
        get_distiller("dm").distill(task)


def test_hparams_dataclass_rejects_bad_values():
    with pytest.raises(BenchmarkError, match="invalid outer_loop=0"):
        dataclasses.replace(get_distiller("dc").resolve_hparams(dataset_spec("mnist"), 1, "paper"), outer_loop=0)
