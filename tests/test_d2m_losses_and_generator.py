"""D2M's pieces in isolation: the two matching losses by hand, the generator family, the artifact's sampling."""

import math

import pytest
import torch

from benchmark.data import dataset_spec
from benchmark.distiller import LoadContext
from benchmark.errors import BenchmarkError
from d2m.artifact import GENERATOR_FILE, GeneratorArtifact
from d2m.generator import (
    ARCHITECTURES,
    GeneratorConfig,
    architecture_for,
    build_discriminator,
    build_generator,
    parameter_count,
    state_bytes,
)
from d2m.losses import embedding_matching_loss, prediction_matching_loss


def test_embedding_matching_by_hand():
    # Layer 1, a flat embedding: class 0 real (1,0) vs generated (0,1) -> 2; class 1 identical -> 0; mean 1.
    real_flat = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    gen_flat = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert embedding_matching_loss([real_flat], [1, 1], [gen_flat], [1, 1]).item() == pytest.approx(1.0)
    # Layer 2, a (B, C, H, W) map: channel attention of the real image is (1.5, 1.5)/norm = (0.7071, 0.7071),
    # of the generated one (1, 0); squared distance 2 - sqrt(2). One class, so the layer value is that.
    real_map = torch.tensor([[[[1.0, -2.0]], [[3.0, 0.0]]]])
    gen_map = torch.tensor([[[[2.0, 0.0]], [[0.0, 0.0]]]])
    two_layers = embedding_matching_loss([real_flat[:1], real_map], [1], [gen_flat[:1], gen_map], [1])
    assert two_layers.item() == pytest.approx((2.0 + (2 - math.sqrt(2))) / 2, abs=1e-5)  # averaged over layers


def test_embedding_matching_compares_class_means_and_only_trains_the_generated_side():
    # Attention normalises each image before the class mean: the real class (1,0), (0,1) has mean (.5, .5), the
    # generated image (.5, .5) becomes (.7071, .7071), so the loss is 2 (.7071 - .5)^2, not 0.
    real = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    gen = torch.tensor([[0.5, 0.5]], requires_grad=True)
    loss = embedding_matching_loss([real], [2], [gen], [1])
    assert loss.item() == pytest.approx(2 * (0.5**0.5 - 0.5) ** 2, abs=1e-6)
    loss.backward()
    assert real.grad is None and gen.grad is not None


def test_prediction_matching_by_hand_with_the_temperature_squared():
    real = torch.tensor([[0.0, 0.0]])  # p = (.5, .5)
    gen = torch.tensor([[math.log(3.0), 0.0]], requires_grad=True)  # q = (.75, .25) at T = 1
    kl = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert prediction_matching_loss(real, [1], gen, [1], 1.0).item() == pytest.approx(kl, abs=1e-6)
    # Doubling the logits and T gives the same distributions; Hinton's T^2 scales the value by 4.
    assert prediction_matching_loss(2 * real, [1], 2 * gen, [1], 2.0).item() == pytest.approx(4 * kl, abs=1e-5)
    assert prediction_matching_loss(real, [1], real.clone(), [1], 4.0).item() == pytest.approx(0.0, abs=1e-7)


def test_prediction_matching_uses_class_mean_probabilities_and_detaches_real():
    # Two real images of one class with opposite confident predictions average to (.5, .5): a generated image
    # predicting (.5, .5) matches exactly, although it matches neither real image.
    real = torch.tensor([[20.0, 0.0], [0.0, 20.0]], requires_grad=True)
    gen = torch.zeros(1, 2, requires_grad=True)
    loss = prediction_matching_loss(real, [2], gen, [1], 1.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    (loss + gen.sum()).backward()
    assert real.grad is None


@pytest.mark.parametrize("dataset", ["digits", "mnist", "cifar10"])
def test_generator_emits_normalised_images_of_the_dataset(dataset):
    spec = dataset_spec(dataset)
    config = GeneratorConfig.for_spec(spec, width=2)
    g = build_generator(config, seed=0)
    x = g(torch.randn(4, config.latent_dim), torch.tensor([0, 1, 2, 3])).detach()
    assert tuple(x.shape) == (4, *spec.shape)
    pixels = x * torch.tensor(spec.std).view(1, -1, 1, 1) + torch.tensor(spec.mean).view(1, -1, 1, 1)
    assert float(pixels.min()) >= -1e-5 and float(pixels.max()) <= 1 + 1e-5  # tanh range mapped to [0, 1]
    d = build_discriminator(config, seed=0)
    scores = d(x, torch.tensor([0, 1, 2, 3]))
    assert scores.shape == (4,)
    assert not torch.allclose(scores, d(x, torch.tensor([4, 5, 6, 7])))  # the projection term reads the class


def test_generator_sizes_and_unknown_resolution():
    assert sorted(ARCHITECTURES) == [8, 16, 28, 32, 64, 128]
    for resolution, arch in ARCHITECTURES.items():
        assert arch.bottom * 2**arch.blocks == resolution
    with pytest.raises(BenchmarkError, match=r"no generator size for resolution 20; available: 8, 16, 28, 32, 64, 128"):
        architecture_for(20)
    g = build_generator(GeneratorConfig.for_spec(dataset_spec("digits"), width=4), seed=0)
    assert parameter_count(g) == sum(p.numel() for p in g.parameters())
    # storage = parameters plus batch-norm running statistics, 4 bytes each (no hidden extra)
    assert state_bytes(g) == sum(t.numel() * t.element_size() for t in g.state_dict().values()) > 4 * parameter_count(g)


def test_generator_initialisation_is_seeded_and_leaves_the_global_rng_alone():
    config = GeneratorConfig.for_spec(dataset_spec("digits"), width=2)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = build_generator(config, seed=5), build_generator(config, seed=5)
    assert torch.equal(torch.rand(1), before)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def _artifact(width: int = 2) -> GeneratorArtifact:
    return GeneratorArtifact(build_generator(GeneratorConfig.for_spec(dataset_spec("digits"), width), seed=1),
                             {"pretrain": {"source": "random init"}})


def test_sampling_is_deterministic_per_seed_and_class_major():
    artifact = _artifact()
    a, b, other = artifact.synthesize(3, seed=7), artifact.synthesize(3, seed=7), artifact.synthesize(3, seed=8)
    assert torch.equal(a.x, b.x) and not torch.allclose(a.x, other.x)
    assert a.y.tolist() == [c for c in range(10) for _ in range(3)]
    bigger = artifact.synthesize(5, seed=7)
    # each class's IPC-3 images open its IPC-5 images (per-class latent streams; eval-mode batch norm)
    assert torch.allclose(bigger.x.view(10, 5, 1, 8, 8)[:, :3], a.x.view(10, 3, 1, 8, 8), atol=1e-6)
    assert artifact.generator.training  # sampling restores the mode it found


def test_any_ipc_is_served_and_storage_does_not_depend_on_it():
    artifact = _artifact()
    assert artifact.serves_any_ipc
    sizes = {ipc: len(artifact.synthesize(ipc, 0)) for ipc in (1, 10, 50)}
    assert sizes == {1: 10, 10: 100, 50: 500}
    assert artifact.storage_bytes() == state_bytes(artifact.generator)
    with pytest.raises(BenchmarkError, match="invalid ipc=0"):
        artifact.synthesize(0, 0)


def test_artifact_round_trip_and_corrupt_file(tmp_path):
    artifact = _artifact()
    artifact.save(tmp_path)
    loaded = GeneratorArtifact.load(tmp_path, LoadContext(device=torch.device("cpu"), train=lambda: None))
    assert torch.equal(loaded.synthesize(2, 3).x, artifact.synthesize(2, 3).x)
    assert loaded.summary()["generator_parameters"] == parameter_count(artifact.generator)
    assert loaded.summary()["pretrain"] == {"source": "random init"}
    (tmp_path / GENERATOR_FILE).write_bytes(b"garbage")
    with pytest.raises(BenchmarkError, match="missing or corrupt"):
        GeneratorArtifact.load(tmp_path, LoadContext(device=torch.device("cpu"), train=lambda: None))
