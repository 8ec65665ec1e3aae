"""Pieces every matching-based method shares: random feature networks, per-class real batches,
activations captured by hooks, attention maps and the distances that compare real with synthetic.

Sources: DM (Zhao & Bilen, WACV 2023; VICO-UoE/DatasetCondensation ``main_DM.py``) for the per-class
mean-embedding distance under freshly drawn networks; DC (Zhao et al., ICLR 2021; ``utils.py::
distance_wb``/``match_loss``) for the layer-wise gradient distance; DataDAM (Sajedi et al., ICCV 2023;
DataDistillation/DataDAM ``utils.py::get_attention``, ``main_DataDAM.py``) for spatial attention of ReLU
outputs; D2M's channel attention (spatially pooled activations, L2-normalised) is the project's reading of
the D2M paper (see ``d2m``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.data.images import LabelledImages
from benchmark.data.spec import DatasetSpec
from benchmark.models import build_model


def fresh_network(arch: str, spec: DatasetSpec, generator: torch.Generator, device: torch.device) -> nn.Module:
    """A newly initialised, trainable network seeded from ``generator``: the reference scripts draw one per
    outer iteration (``get_network`` in DC/DSA ``main.py``, DM ``main_DM.py``), seeded by the clock there."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return build_model(arch, spec, seed=seed, device=device)


def random_feature_net(arch: str, spec: DatasetSpec, generator: torch.Generator, device: torch.device) -> nn.Module:
    """A freshly initialised network whose weights are frozen: the DM/DataDAM/D2M feature extractor.

    Kept in train mode as the references do (it matters only for batch-norm variants)."""
    net = fresh_network(arch, spec, generator, device)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.train()


def mixes_batch(net: nn.Module) -> bool:
    """Whether a forward of ``net`` now mixes the images of its batch (a batch norm in train mode), so that
    the batch cannot run in pieces (:mod:`benchmark.blocking`); frozen (eval-mode) batch norm does not."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in net.modules())


def has_batchnorm(net: nn.Module) -> bool:
    """Whether ``net`` has batch norm, in either mode: the references treat such networks specially (DC freezes
    their statistics, DM embeds all classes in one forward). Whether a forward mixes a batch right now, so that
    it cannot run in pieces, is :func:`mixes_batch`."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def real_batches_by_class(train: LabelledImages, per_class: int, generator: torch.Generator) -> list[Tensor]:
    """``per_class`` random real images of every class (all of a smaller class), one tensor per class."""
    return [train.images_of_class(c, per_class, generator) for c in range(train.num_classes)]


def class_means(features: Tensor, sizes: Sequence[int]) -> Tensor:
    """Mean feature of each consecutive group of rows (one group per class): (classes, D)."""
    return torch.stack([chunk.mean(dim=0) for chunk in torch.split(features.flatten(1), list(sizes))])


def class_mean_distance(real: Tensor, real_sizes: Sequence[int], syn: Tensor, syn_sizes: Sequence[int]) -> Tensor:
    """Σ over classes of ‖mean real − mean synthetic‖²: DM's loss, DataDAM's ``MSE_B`` error."""
    return ((class_means(real, real_sizes) - class_means(syn, syn_sizes)) ** 2).sum()


class ActivationRecorder:
    """Forward hooks that keep the outputs of every module of some types (ReLUs, by default), in order."""

    def __init__(self, net: nn.Module, types: tuple[type, ...] = (nn.ReLU,)) -> None:
        self.outputs: list[Tensor] = []
        self._handles = [m.register_forward_hook(self._keep) for m in net.modules() if isinstance(m, types)]

    def _keep(self, module: nn.Module, inputs: tuple, output: Tensor) -> None:
        self.outputs.append(output)

    def take(self) -> list[Tensor]:
        outputs, self.outputs = self.outputs, []
        return outputs

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def __enter__(self) -> ActivationRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def spatial_attention(activation: Tensor, power: float = 1.0) -> Tensor:
    """DataDAM's attention map: Σ_channels |a|^p per location, flattened and L2-normalised: (B, H·W)."""
    return F.normalize(activation.abs().pow(power).sum(dim=1).flatten(1), p=2.0, dim=1)


def channel_attention(activation: Tensor, power: float = 1.0) -> Tensor:
    """Channel attention: |a|^p averaged over space per channel, L2-normalised: (B, C)."""
    pooled = activation.abs().pow(power).flatten(2).mean(dim=2) if activation.ndim == 4 else activation.abs()
    return F.normalize(pooled, p=2.0, dim=1)


def gradient_distance(grads_real: Sequence[Tensor], grads_syn: Sequence[Tensor]) -> Tensor:
    """DC's layer-wise gradient matching distance (``distance_wb`` summed by ``match_loss``, metric 'ours').

    Per layer, gradients are reshaped to (output channels, rest) and the distance is Σ_rows
    (1 − cos(real_row, syn_row)); 1-D parameters (biases, norm affine terms) contribute nothing, as in the
    reference."""
    total = grads_syn[0].new_zeros(())
    for gr, gs in zip(grads_real, grads_syn, strict=True):
        if gr.ndim == 1:
            continue
        gr, gs = gr.reshape(gr.shape[0], -1), gs.reshape(gs.shape[0], -1)
        cos = (gr * gs).sum(dim=-1) / (gr.norm(dim=-1) * gs.norm(dim=-1) + 1e-6)
        total = total + (1 - cos).sum()
    return total
