"""A small Vision Transformer for the cross-architecture table.

ViT-Tiny widths (Touvron et al. 2021, DeiT-Ti: dim 192, 3 heads, MLP ratio 4) at half depth (6 blocks), with
patches sized so every resolution gives about 8×8 tokens (patch 4 at 32 px, 16 at 128 px): small enough to
train on a synthetic set on a CPU, yet attention-based rather than convolutional, which is what the
cross-architecture question needs.

A patch is at least 2×2 pixels (:data:`MIN_PATCH`; 4×4 tokens at 8 px). A one-pixel patch of a one-channel
image embeds one number, every token a multiple of the same vector, which the first layer norm reduces to about
its sign while the 0.02-scaled position embedding is swamped: the 8-px digits ViT with one-pixel patches stayed
at chance (IPC-10 sets of random and d2m: 16.94 and 8.06 % under the reduced protocol; cross-entropy still 2.3
after 150 SGD steps, lr 0.01, on 640 training images, and 2.3 under Adam 1e-3), where 2×2 patches reached 69 %
test accuracy after the same 150 SGD steps (2026-11-27, this box).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark.data.spec import DatasetSpec
from benchmark.models.registry import register_model

MIN_PATCH = 2
"""Smallest patch side: a one-pixel, one-channel token carries no position-sensitive content (module docstring)."""


class ViT(nn.Module):
    def __init__(self, spec: DatasetSpec, dim: int = 192, depth: int = 6, heads: int = 3, mlp_ratio: int = 4) -> None:
        super().__init__()
        patch = max(MIN_PATCH, spec.resolution // 8)
        self.patch_embed = nn.Conv2d(spec.channels, dim, patch, stride=patch)
        tokens = ((spec.resolution - patch) // patch + 1) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * mlp_ratio, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, spec.num_classes)

    def embed(self, x: Tensor) -> Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], dim=1) + self.pos_embed
        return self.norm(self.blocks(tokens))[:, 0]

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.embed(x))


@register_model("vit")
def vit(spec: DatasetSpec) -> ViT:
    """Small ViT (dim 192, 6 blocks, 3 heads, ~8×8 patches): the attention-based cross-architecture check."""
    return ViT(spec)
