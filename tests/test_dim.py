"""DiM: generator shapes, deterministic any-IPC sampling, storage, the cached stages and refusals."""

import dataclasses

import pytest
import torch

from baselines.dim import DiMArtifact, from_gan_space, pool_recipe, to_gan_space
from baselines.dim_gan import DiMCritic, DiMGenerator
from benchmark.data import InMemoryImages, dataset_spec, load_dataset
from benchmark.distiller import Budget, DistillTask, LoadContext, get_distiller
from benchmark.errors import BenchmarkError


@pytest.mark.parametrize("resolution", [8, 28, 32])
def test_generator_and_critic_fit_the_reference_resolutions(resolution):
    gen = DiMGenerator(1, resolution, 10, noise_dim=100, width=8)
    labels = torch.tensor([0, 3, 9])
    z = gen.noise(labels, torch.Generator().manual_seed(0))
    assert torch.equal(z[:, :10], torch.nn.functional.one_hot(labels, 10).float())
    images = gen.eval()(z)
    assert images.shape == (3, 1, resolution, resolution) and images.abs().max() <= 1
    score, logits = DiMCritic(1, resolution, 10, width=8)(images)
    assert score.shape == (3, 1) and logits.shape == (3, 10)


def artifact(seed: int = 0) -> DiMArtifact:
    spec = dataset_spec("digits")
    torch.manual_seed(seed)
    gen = DiMGenerator(1, 8, 10, 100, width=8)
    config = {"spec": {"channels": 1, "resolution": 8, "num_classes": 10, "mean": list(spec.mean),
                       "std": list(spec.std)}, "noise_dim": 100, "width": 8}
    return DiMArtifact(gen.state_dict(), config, torch.device("cpu"))


def test_sampling_is_deterministic_class_balanced_and_serves_any_ipc(tmp_path):
    a = artifact()
    first, again, other = a.synthesize(3, 0), a.synthesize(3, 0), a.synthesize(3, 1)
    assert torch.equal(first.x, again.x) and not torch.equal(first.x, other.x)
    assert first.y.tolist() == [c for c in range(10) for _ in range(3)] and first.x.shape == (30, 1, 8, 8)
    assert a.synthesize(7, 0).x.shape == (70, 1, 8, 8) and a.serves_any_ipc
    state = a.gen.state_dict()
    assert a.storage_bytes() == sum(t.numel() * t.element_size() for t in state.values())
    a.save(tmp_path)
    loaded = DiMArtifact.load(tmp_path, LoadContext(device=torch.device("cpu"), train=lambda: None))
    assert torch.equal(loaded.synthesize(3, 0).x, first.x)
    with pytest.raises(BenchmarkError, match="invalid ipc=0"):
        a.synthesize(0, 0)


def test_gan_space_round_trip():
    spec = dataset_spec("digits")
    x = torch.randn(4, 1, 8, 8)
    assert torch.allclose(from_gan_space(to_gan_space(x, spec), spec), x, atol=1e-5)
    assert to_gan_space(torch.full((1, 1, 1, 1), -spec.mean[0] / spec.std[0]), spec).item() == pytest.approx(-1)


def test_pool_snapshots_follow_the_reference_schedule_on_a_doubling_grid():
    hp = get_distiller("dim").default_hparams(dataset_spec("cifar10"), None, "paper")
    recipe = pool_recipe("convnet", hp, dataset_spec("cifar10"), batches=16 * 781)
    assert recipe.snapshot_steps[:5] == (0, 16, 32, 64, 128) and recipe.snapshot_steps[-1] == 16 * 781
    assert (recipe.lr, recipe.momentum, recipe.weight_decay, recipe.batch_size) == (0.01, 0.9, 5e-4, 64)
    assert hp.pool == ("convnet", "resnet18_bn", "resnet18_ap") and (hp.gan_epochs, hp.match_epochs) == (150, 100)


def test_cpu_small_gives_the_digits_gan_enough_steps_at_the_reference_lr():
    """Ten epochs of digits are 110 GAN steps (sets at chance); a 10× lr got there in 1,000 steps by collapsing
    every class to one image, so the digits row keeps the reference's lr and buys ~5,000 steps instead."""
    spec, train = dataset_spec("digits"), load_dataset("digits").train
    hp = get_distiller("dim").default_hparams(spec, 10, "cpu-small")
    assert hp.gan_epochs * (len(train) // hp.gan_batch) >= 4500 and hp.gan_lr == 1e-4
    assert get_distiller("dim").default_hparams(dataset_spec("mnist"), 10, "cpu-small").gan_epochs == 10


def test_distillation_shares_its_cached_stages_across_seeds(tmp_path):
    data = load_dataset("digits")
    idx = torch.cat([data.train.indices_of_class(c)[:13] for c in range(10)])
    train = InMemoryImages(data.train.pixels[idx], data.train.labels[idx], data.spec, "digits subset")
    method = get_distiller("dim")
    hp = dataclasses.replace(method.default_hparams(data.spec, None, "cpu-small"), width=8, gan_batch=64,
                             pool=("mlp",))

    def task(seed: int, **changes) -> DistillTask:
        return DistillTask(train=train, spec=data.spec, ipc=None, budget=Budget("cpu-small", max_iterations=1),
                           device=torch.device("cpu"), seed=seed, hparams=dataclasses.replace(hp, **changes),
                           work_dir=tmp_path / f"work{seed}", cache_dir=tmp_path / "cache")

    first = method.distill(task(0)).summary()
    assert first["gan"]["built_now"] and first["pool"]["mlp"]["built_now"] == 1 and first["iterations"] == 1
    second = method.distill(task(1, require_cache=True)).summary()
    assert not second["gan"]["built_now"] and second["pool"]["mlp"]["reused"] == 1
    with pytest.raises(BenchmarkError, match="DiM GAN cache .* is missing or corrupt and require_cache is set"):
        method.distill(task(2, require_cache=True, gan_seed=5))


def test_refuses_what_it_cannot_serve():
    method = get_distiller("dim")
    assert method.serves_any_ipc
    odd = dataclasses.replace(dataset_spec("digits"), resolution=30)
    with pytest.raises(BenchmarkError, match="invalid resolution=30: a multiple of 4"):
        method.check(odd, None)
    with pytest.raises(BenchmarkError, match="invalid ipc=0"):
        method.check(dataset_spec("digits"), 0)
    assert method.default_hparams(dataset_spec("cifar100"), None, "paper").noise_dim == 190


def test_gan_curve_probe_reads_agreement_and_spread_without_moving_the_generator(load_experiment):
    """The curve that sized the digits GAN: its train-mode probe must not leak batch statistics into the
    generator it goes on training, and a collapsed class (one image repeated) must read as zero spread."""
    curve = load_experiment("dim_gan_curve")
    GanProbe = curve.GanProbe

    data = load_dataset("digits")
    reader = GanProbe.fit(data.train, 10, limit=200, seed=0)
    gen = DiMGenerator(1, 8, 10, 100, width=8).train()
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    for train_mode in (True, False):
        agreement, spread = curve.probe(gen, reader, data.spec, per_class=4, train_mode=train_mode)
        assert 0 <= agreement <= 1 and spread > 0
    assert gen.training and all(torch.equal(before[k], v) for k, v in gen.state_dict().items())
    x, y = data.train.images_at(torch.arange(200)), data.train.labels[:200]
    labels = torch.arange(10).repeat_interleave(3)
    assert reader.read(x[:10].repeat_interleave(3, dim=0), labels)[1] == 0  # collapsed: one image per class
    assert reader.read(x, y)[0] > 0.9 and reader.read(x, (y + 1) % 10)[0] < 0.1  # real images, right and wrong
