import pytest
import torch

from benchmark.data import dataset_spec
from benchmark.errors import BenchmarkError
from benchmark.models import build_model, list_models

SPECS = ["digits", "mnist", "cifar10", "tiny_imagenet", "imagenette"]


@pytest.mark.parametrize("dataset", SPECS)
def test_every_architecture_adapts_to_channels_resolution_and_classes(dataset):
    spec = dataset_spec(dataset)
    x = torch.randn(2, *spec.shape)
    for name in ["convnet", "convnet_d1", "convnet_w32", "convnet_bn", "convnet_ln", "convnet_np", "alexnet", "vgg11",
                 "resnet18", "resnet18_bn", "resnet18_ap", "mlp", "vit"]:
        net = build_model(name, spec, seed=0)
        assert net(x).shape == (2, spec.num_classes), name
        assert net.embed(x).ndim == 2, name


@pytest.mark.parametrize("dataset,tokens", [("digits", 16), ("mnist", 81), ("cifar10", 64), ("imagenette", 64)])
def test_vit_tokens_are_patches_of_at_least_two_pixels(dataset, tokens):
    """One-pixel tokens of 8-px digits carried only a sign after layer norm and the ViT stayed at chance."""
    net = build_model("vit", dataset_spec(dataset), seed=0)
    assert net.patch_embed.kernel_size[0] >= 2 and net.pos_embed.shape[1] == tokens + 1


def test_convnet_matches_the_reference_layout_on_mnist():
    # VICO-UoE/DatasetCondensation ConvNet(channel=1, width 128, depth 3, instancenorm) on 28x28: 317,706
    # parameters (first conv pads by 3, so features are 128 x 4 x 4 = 2048).
    net = build_model("convnet", dataset_spec("mnist"))
    assert sum(p.numel() for p in net.parameters()) == 317706
    assert net.classifier.in_features == 2048
    assert isinstance(net.features[0][1], torch.nn.GroupNorm) and net.features[0][1].num_groups == 128


def test_convnet_depth_follows_resolution():
    assert len(build_model("convnet", dataset_spec("cifar10")).features) == 3
    assert len(build_model("convnet", dataset_spec("tiny_imagenet")).features) == 4
    assert len(build_model("convnet", dataset_spec("imagenette")).features) == 5


def test_block_outputs_end_in_the_embedding():
    net = build_model("convnet", dataset_spec("cifar10"), seed=0)
    x = torch.randn(3, 3, 32, 32)
    outs = net.block_outputs(x)
    assert [o.shape[-1] for o in outs] == [16, 8, 4]
    assert torch.allclose(outs[-1].flatten(1), net.embed(x))


def test_seeded_builds_are_identical_and_leave_the_global_rng_alone():
    spec = dataset_spec("digits")
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = build_model("convnet", spec, seed=7), build_model("convnet", spec, seed=7)
    after = torch.rand(1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert torch.equal(before, after)
    c = build_model("convnet", spec, seed=8)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_unknown_architecture():
    with pytest.raises(BenchmarkError, match="unknown architecture 'resnet19'.*did you mean resnet18"):
        build_model("resnet19", dataset_spec("digits"))
    assert "vit" in list_models() and list_models("resnet*") == ["resnet18", "resnet18_ap", "resnet18_bn"]
