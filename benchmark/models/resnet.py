"""ResNet-18 variants of VICO-UoE/DatasetCondensation ``networks.py`` (itself after kuangliu/pytorch-cifar).

``resnet18`` uses instance norm (``GroupNorm(C, C)``), ``resnet18_bn`` batch norm, and ``resnet18_ap``
is the reference ``ResNet18BN_AP``: strided convs replaced by stride-1 convs followed by 2×2 average
pooling, with batch norm. The reference's final ``avg_pool2d(out, 4)`` is an adaptive average pool here,
identical at 32×32 and defined at every other resolution.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.data.spec import DatasetSpec
from benchmark.models.registry import flat_features, register_model


def norm2d(norm: str, channels: int) -> nn.Module:
    return nn.GroupNorm(channels, channels, affine=True) if norm == "instancenorm" else nn.BatchNorm2d(channels)


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, norm: str, avg_pool_downsample: bool) -> None:
        super().__init__()
        conv_stride = 1 if avg_pool_downsample else stride
        self.downsample = avg_pool_downsample and stride != 1
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=conv_stride, padding=1, bias=False)
        self.bn1 = norm2d(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = norm2d(norm, planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            pool = [nn.AvgPool2d(2, 2)] if self.downsample else []
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=conv_stride, bias=False), *pool,
                                          norm2d(norm, planes))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        if self.downsample:
            out = F.avg_pool2d(out, 2, 2)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, spec: DatasetSpec, norm: str = "instancenorm", avg_pool_downsample: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(spec.channels, 64, 3, padding=1, bias=False), norm2d(norm, 64),
                                   nn.ReLU(inplace=True)]
        in_planes, size = 64, spec.resolution
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stride = stride if size // stride >= 2 else 1  # keep normalised maps at least 2×2
            size = size // stride
            layers += [BasicBlock(in_planes, planes, stride, norm, avg_pool_downsample),
                       BasicBlock(planes, planes, 1, norm, avg_pool_downsample)]
            in_planes = planes
        pool = nn.Identity() if avg_pool_downsample else nn.AdaptiveAvgPool2d(1)
        self.features = nn.Sequential(*layers, pool)
        self.classifier = nn.Linear(flat_features(self.features, spec), spec.num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.features(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.embed(x))


@register_model("resnet18")
def resnet18(spec: DatasetSpec) -> ResNet18:
    """ResNet-18 with instance norm (the DC/DM cross-architecture ResNet18)."""
    return ResNet18(spec, norm="instancenorm")


@register_model("resnet18_bn")
def resnet18_bn(spec: DatasetSpec) -> ResNet18:
    """ResNet-18 with batch norm."""
    return ResNet18(spec, norm="batchnorm")


@register_model("resnet18_ap")
def resnet18_ap(spec: DatasetSpec) -> ResNet18:
    """ResNet-18, batch norm, average-pool downsampling (the reference ResNet18BN_AP used by MTT)."""
    return ResNet18(spec, norm="batchnorm", avg_pool_downsample=True)
