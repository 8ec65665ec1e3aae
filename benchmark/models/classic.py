"""Cross-architecture evaluation networks: AlexNet, VGG11, MLP (VICO-UoE/DatasetCondensation ``networks.py``).

Adapted only where the reference hard-codes 28/32-pixel arithmetic: classifier widths come from a dry
run and a pooling layer is skipped once the map is 1×1, so the same definitions serve 8×8 to 128×128.
"""

from __future__ import annotations

from torch import Tensor, nn

from benchmark.data.spec import DatasetSpec
from benchmark.models.registry import flat_features, register_model


class FeatureClassifier(nn.Module):
    """A feature extractor followed by one linear classifier; ``embed`` returns the flat features."""

    def __init__(self, features: nn.Module, spec: DatasetSpec) -> None:
        super().__init__()
        self.features = features
        self.classifier = nn.Linear(flat_features(features, spec), spec.num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.features(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.embed(x))


def pool_if_room(size: int, last: bool = False) -> tuple[list[nn.Module], int]:
    """A 2×2 max-pool unless it would leave a normalised conv with a map smaller than 2×2 (or, for
    the last pool, nothing to pool): the reference's pooling at 32 px, kept defined at 8 px."""
    return ([nn.MaxPool2d(2, 2)], size // 2) if size // 2 >= (1 if last else 2) else ([], size)


@register_model("alexnet")
def alexnet(spec: DatasetSpec) -> FeatureClassifier:
    """AlexNet (5 conv, 128-192-256-192-192, no norm) as in the DC cross-architecture table."""
    size = spec.resolution + (4 if spec.channels == 1 else 0)
    layers: list[nn.Module] = [nn.Conv2d(spec.channels, 128, 5, padding=4 if spec.channels == 1 else 2),
                               nn.ReLU(inplace=True)]
    pool, size = pool_if_room(size)
    layers += pool + [nn.Conv2d(128, 192, 5, padding=2), nn.ReLU(inplace=True)]
    pool, size = pool_if_room(size)
    layers += pool + [nn.Conv2d(192, 256, 3, padding=1), nn.ReLU(inplace=True),
                      nn.Conv2d(256, 192, 3, padding=1), nn.ReLU(inplace=True),
                      nn.Conv2d(192, 192, 3, padding=1), nn.ReLU(inplace=True)]
    pool, size = pool_if_room(size, last=True)
    return FeatureClassifier(nn.Sequential(*layers, *pool), spec)


VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def vgg11_features(spec: DatasetSpec, norm: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels, size = spec.channels, spec.resolution + (4 if spec.channels == 1 else 0)
    for i, item in enumerate(VGG11_CFG):
        if item == "M":
            pool, size = pool_if_room(size, last=i == len(VGG11_CFG) - 1)
            layers += pool
            continue
        norm_layer = nn.GroupNorm(item, item, affine=True) if norm == "instancenorm" else nn.BatchNorm2d(item)
        layers += [nn.Conv2d(channels, item, 3, padding=3 if spec.channels == 1 and i == 0 else 1), norm_layer,
                   nn.ReLU(inplace=True)]
        channels = item
    return nn.Sequential(*layers)


@register_model("vgg11")
def vgg11(spec: DatasetSpec) -> FeatureClassifier:
    """VGG11 with instance norm (the DC/DSA/DM cross-architecture default)."""
    return FeatureClassifier(vgg11_features(spec, "instancenorm"), spec)


@register_model("vgg11_bn")
def vgg11_bn(spec: DatasetSpec) -> FeatureClassifier:
    """VGG11 with batch norm."""
    return FeatureClassifier(vgg11_features(spec, "batchnorm"), spec)


@register_model("mlp")
def mlp(spec: DatasetSpec) -> FeatureClassifier:
    """MLP with two hidden layers of 128 units and ReLU (the DC reference MLP)."""
    features = nn.Sequential(nn.Flatten(), nn.Linear(spec.channels * spec.resolution**2, 128), nn.ReLU(inplace=True),
                             nn.Linear(128, 128), nn.ReLU(inplace=True))
    return FeatureClassifier(features, spec)
