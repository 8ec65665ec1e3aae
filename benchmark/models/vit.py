"""A small Vision Transformer for the cross-architecture table.

ViT-Tiny widths (Touvron et al. 2021, DeiT-Ti: dim 192, 3 heads, MLP ratio 4) at half depth (6 blocks), with
patches sized so every resolution gives about 8×8 tokens (patch 4 at 32 px, 16 at 128 px, 1 at 8 px):
small enough to train on a synthetic set on a CPU, yet attention-based rather than convolutional,
which is what the cross-architecture question needs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark.data.spec import DatasetSpec
from benchmark.models.registry import register_model


class ViT(nn.Module):
    def __init__(self, spec: DatasetSpec, dim: int = 192, depth: int = 6, heads: int = 3, mlp_ratio: int = 4) -> None:
        super().__init__()
        patch = max(1, spec.resolution // 8)
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
