"""The class-conditional generator D2M distils into, and the projection discriminator that pre-trains it.

D2M (Sajedi et al., ECCV 2024) distils into a pre-trained BigGAN. This is the BigGAN family (Brock et
al., ICLR 2019, §3 and appendix B; ajbrock/BigGAN-PyTorch ``BigGAN.py::G_arch``/``D_arch``) in its
plainer SNGAN-projection form (Miyato & Koyama, ICLR 2018): residual up-blocks (BN → ReLU → ×2 nearest
upsampling → conv 3×3 → BN → ReLU → conv 3×3, plus an upsampled 1×1 shortcut) with **class-conditional
batch norm** (per-class gain and bias embeddings; de Vries et al. 2017), latent dimension 128, and a
final BN → ReLU → conv 3×3 → tanh. The class also enters at the input as a learned 128-d embedding
concatenated with z (BigGAN concatenates its shared class embedding with z chunks): on the short CPU
budgets class conditioning then appears in about half the iterations (digits: samples 75 % classifiable
after 100 instead of ~10 %). Left out, and said so: BigGAN's hierarchical latent, self-attention and
spectral norm in G. The discriminator is residual with spectral norm everywhere (embedding included)
and a projection head (output = ψ(h) + ⟨embed(y), h⟩).

Sizes per resolution (bottom map size, channel multipliers of the bottom map and after each block):
BigGAN's ``arch[32]`` (4×4, 4·ch throughout), ``arch[64]`` and ``arch[128]`` (4×4, 16·ch down to ch);
8×8 (``digits``) starts at 2×2 and 28×28 (MNIST family) at 7×7, 16×16 at 4×4, each with two blocks
narrowing 4·ch → 2·ch → ch as BigGAN's larger sizes do (the full-resolution convolutions dominate the
cost on a CPU). Any other resolution is a one-line error.

The generator emits images in the space the harness works in: tanh → pixels in [0, 1] → normalised with
the dataset's mean and std, the space of ``LabelledImages.images_at``, so real and generated batches go
through the same feature networks and augmentation unchanged.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from benchmark.data.spec import DatasetSpec
from benchmark.errors import BenchmarkError, invalid_value

LATENT_DIM = 128  # BigGAN's dim_z for every resolution


@dataclass(frozen=True)
class Architecture:
    """Spatial size of the first feature map and channel multipliers (× width) of it and of each block."""

    bottom: int
    multipliers: tuple[int, ...]

    @property
    def blocks(self) -> int:
        return len(self.multipliers) - 1


ARCHITECTURES: dict[int, Architecture] = {
    8: Architecture(2, (4, 2, 1)),
    16: Architecture(4, (4, 2, 1)),
    28: Architecture(7, (4, 2, 1)),
    32: Architecture(4, (4, 4, 4, 4)),  # BigGAN-PyTorch G_arch[32]
    64: Architecture(4, (16, 16, 8, 4, 2)),  # G_arch[64]
    128: Architecture(4, (16, 16, 8, 4, 2, 1)),  # G_arch[128]
}


def architecture_for(resolution: int) -> Architecture:
    if resolution not in ARCHITECTURES:
        raise BenchmarkError(f"d2m has no generator size for resolution {resolution}; "
                             f"available: {', '.join(map(str, sorted(ARCHITECTURES)))}")
    return ARCHITECTURES[resolution]


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to rebuild a generator (kept with its weights, so an artifact loads on its own)."""

    channels: int
    resolution: int
    num_classes: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    latent_dim: int = LATENT_DIM

    def __post_init__(self) -> None:
        architecture_for(self.resolution)
        if self.width < 1:
            raise invalid_value("generator_width", self.width, "a positive integer")

    @classmethod
    def for_spec(cls, spec: DatasetSpec, width: int) -> GeneratorConfig:
        return cls(spec.channels, spec.resolution, spec.num_classes, width, tuple(spec.mean), tuple(spec.std))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GeneratorConfig:
        return cls(**{**data, "mean": tuple(data["mean"]), "std": tuple(data["std"])})


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are looked up per class (starting at the identity)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]


class UpBlock(nn.Module):
    """BigGAN's generator block: two conditional-BN/ReLU/conv stages around a ×2 upsampling."""

    def __init__(self, in_channels: int, out_channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(in_channels, num_classes)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn2 = ConditionalBatchNorm2d(out_channels, num_classes)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


def _xavier(module: nn.Module) -> None:
    """SNGAN/BigGAN-style initialisation of every conv and linear layer (biases zero)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def _sn(layer: nn.Module) -> nn.Module:
    """Xavier-initialised, then spectrally normalised (Miyato et al. 2018): every layer of D."""
    if isinstance(layer, nn.Embedding):
        nn.init.xavier_uniform_(layer.weight)
    else:
        _xavier(layer)
    return spectral_norm(layer)


class Generator(nn.Module):
    """G(z, y): latent (B, 128) and class labels (B,) → normalised images (B, C, H, W)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        arch = architecture_for(config.resolution)
        widths = [m * config.width for m in arch.multipliers]
        self.bottom = arch.bottom
        self.class_embed = nn.Embedding(config.num_classes, config.latent_dim)
        self.linear = nn.Linear(2 * config.latent_dim, widths[0] * arch.bottom**2)
        self.blocks = nn.ModuleList(UpBlock(a, b, config.num_classes) for a, b in itertools.pairwise(widths))
        self.out_bn = nn.BatchNorm2d(widths[-1])
        self.out_conv = nn.Conv2d(widths[-1], config.channels, 3, padding=1)
        self.register_buffer("mean", torch.tensor(config.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, -1, 1, 1), persistent=False)
        _xavier(self)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        h = self.linear(torch.cat([z, self.class_embed(y)], dim=1)).view(z.shape[0], -1, self.bottom, self.bottom)
        for block in self.blocks:
            h = block(h, y)
        pixels = (torch.tanh(self.out_conv(F.relu(self.out_bn(h)))) + 1) / 2
        return (pixels - self.mean) / self.std


class DownBlock(nn.Module):
    """Discriminator block (ReLU → conv → ReLU → conv → avg-pool, 1×1 shortcut); the first one skips the
    leading ReLU, as SNGAN's ``OptimizedBlock`` does on raw images."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool, first: bool) -> None:
        super().__init__()
        self.conv1 = _sn(nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.conv2 = _sn(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.shortcut = _sn(nn.Conv2d(in_channels, out_channels, 1))
        self.downsample, self.first = downsample, first

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        skip = self.shortcut(x)
        if self.downsample:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        return h + skip


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = ψ(h(x)) + ⟨embed(y), h(x)⟩ with h the sum-pooled residual features (Miyato & Koyama 2018)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        arch = architecture_for(config.resolution)
        widths = [m * config.width for m in reversed(arch.multipliers)]
        channels = [config.channels, *widths]
        # One down-sampling block per generator block, then one at full depth that keeps the size.
        self.blocks = nn.Sequential(*(DownBlock(a, b, downsample=i < arch.blocks, first=i == 0)
                                      for i, (a, b) in enumerate(itertools.pairwise(channels))))
        self.linear = _sn(nn.Linear(widths[-1], 1))
        self.embed = _sn(nn.Embedding(config.num_classes, widths[-1]))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)


def _seeded(build, seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def build_generator(config: GeneratorConfig, seed: int, device: torch.device | str = "cpu") -> Generator:
    """A freshly initialised generator; module initialisers draw from a forked, seeded global RNG."""
    return _seeded(lambda: Generator(config), seed).to(device)


def build_discriminator(config: GeneratorConfig, seed: int,
                        device: torch.device | str = "cpu") -> ProjectionDiscriminator:
    return _seeded(lambda: ProjectionDiscriminator(config), seed).to(device)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def state_bytes(module: nn.Module) -> int:
    """Bytes of everything sampling needs: parameters and batch-norm running statistics."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())
