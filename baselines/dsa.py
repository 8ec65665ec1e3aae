"""DSA: dataset condensation with differentiable siamese augmentation (Zhao & Bilen, ICML 2021).

DC's gradient matching (:mod:`baselines.dc`) where, at every image update, each class's real batch and
synthetic images go through the *same* randomly drawn differentiable augmentation (paper §3: one
family and one set of magnitudes per class and step, :func:`benchmark.augment.dsa_siamese`), and the
inner-loop network training augments every synthetic batch with per-image draws (:func:`benchmark.augment.
dsa`). Follows VICO-UoE/DatasetCondensation ``main.py --method DSA`` and ``utils.py::DiffAugment``; the
defaults are the README's DSA command (``--init real --dsa_strategy color_crop_cutout_flip_scale_rotate``,
and the same without ``flip`` for digit datasets, as the README advises). The reference seeds each
class's draw with the clock in milliseconds, so on a fast device consecutive classes can share a draw;
here every class gets its own draw from the task's ``dsa`` stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from baselines.dc import DC, DCHparams
from benchmark.augment import DEFAULT_STRATEGY
from benchmark.distiller import register_distiller


@dataclass(frozen=True)
class DSAHparams(DCHparams):
    init: str = "real"                      # readme.md DSA command: --init real
    dsa_strategy: str = DEFAULT_STRATEGY    # readme.md: color_crop_cutout_flip_scale_rotate (digits: no flip)


@register_distiller("dsa")
class DSA(DC):
    """DSA: gradient matching with differentiable siamese augmentation (Zhao & Bilen, ICML 2021)."""

    Hparams = DSAHparams
