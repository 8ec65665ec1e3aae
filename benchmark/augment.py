"""Differentiable Siamese Augmentation (DSA; Zhao & Bilen, ICML 2021), batched on the device.

Re-implements VICO-UoE/DatasetCondensation ``utils.py::DiffAugment`` in its default single mode
(``aug_mode='S'``): each call draws *one* transformation family out of the strategy
(``color`` = brightness + saturation + contrast, ``crop``, ``cutout``, ``flip``, ``scale``, ``rotate``)
and applies it with freshly drawn magnitudes. Magnitudes are the reference ``ParamDiffAug`` values.

* :func:`dsa` draws magnitudes per image (how the evaluator augments a training batch, reference
  ``seed=-1``).
* :func:`dsa_siamese` draws one set of magnitudes and applies it to every image of every batch given
  (the reference's seeded mode used by DC/DSA/DM for real and synthetic batches).
* :func:`diffaug` is the DiffAugment *chain* of DiM (vimar-gu/DiM ``augment.py::DiffAug``, after
  mit-han-lab/data-efficient-gans): ``flip`` and ``color`` whenever named, then one of the other named
  families drawn per call, ``cutout`` last — per image, or one draw for the whole batch (``shared``).
  Each family is the same transformation with the same magnitudes as in DSA.

All randomness comes from an explicit ``torch.Generator``. ``affine_grid``/``grid_sample`` use
``align_corners=False``, the default of every torch release since 1.3 and hence what the reference code
computes today (it passes no flag; see ``shared/notes/reference-runs.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.data.spec import DatasetSpec
from benchmark.errors import invalid_value

DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"
FAMILIES = ("color", "crop", "cutout", "flip", "scale", "rotate")


@dataclass(frozen=True)
class DSAParams:
    """Magnitudes of reference ``ParamDiffAug``."""

    prob_flip: float = 0.5
    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5


DSA_PARAMS = DSAParams()


def parse_strategy(strategy: str) -> tuple[str, ...]:
    """``"color_crop_flip"`` → ("color", "crop", "flip"); ``"none"`` or "" → ()."""
    if strategy in ("", "none", "None"):
        return ()
    families = tuple(strategy.split("_"))
    for f in families:
        if f not in FAMILIES:
            raise invalid_value("dsa_strategy", strategy, f"'_'-joined families from {', '.join(FAMILIES)}, or none")
    return families


def strategy_for(spec: DatasetSpec, strategy: str = DEFAULT_STRATEGY) -> str:
    """The strategy without ``flip`` for datasets where a mirrored image changes its class (digits)."""
    families = parse_strategy(strategy)
    if not spec.allow_flip:
        families = tuple(f for f in families if f != "flip")
    return "_".join(families) or "none"


def _uniform(n: int, generator: torch.Generator) -> Tensor:
    return torch.rand(n, generator=generator, device=generator.device)


def _randint(low: int, high: int, n: int, generator: torch.Generator) -> Tensor:
    return torch.randint(low, high, (n,), generator=generator, device=generator.device)


def _affine(x: Tensor, theta: Tensor) -> Tensor:
    theta = theta.to(x.device, x.dtype).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def _per_image(v: Tensor, x: Tensor) -> Tensor:
    return v.to(x.device, x.dtype).view(-1, 1, 1, 1)


def draw(family: str, n: int, height: int, width: int, generator: torch.Generator,
         p: DSAParams = DSA_PARAMS) -> dict[str, Tensor]:
    """Random magnitudes of one family for ``n`` images (``n=1`` to share them across a batch)."""
    if family == "color":
        return {"brightness": _uniform(n, generator), "saturation": _uniform(n, generator),
                "contrast": _uniform(n, generator)}
    if family == "scale":
        lo = 1.0 / p.ratio_scale
        return {"sx": _uniform(n, generator) * (p.ratio_scale - lo) + lo,
                "sy": _uniform(n, generator) * (p.ratio_scale - lo) + lo}
    if family == "rotate":
        return {"angle": (_uniform(n, generator) - 0.5) * 2 * p.ratio_rotate / 180 * math.pi}
    if family == "flip":
        return {"flip": _uniform(n, generator) < p.prob_flip}
    if family == "crop":
        sx, sy = int(height * p.ratio_crop_pad + 0.5), int(width * p.ratio_crop_pad + 0.5)
        return {"tx": _randint(-sx, sx + 1, n, generator), "ty": _randint(-sy, sy + 1, n, generator)}
    if family == "cutout":
        ch, cw = int(height * p.ratio_cutout + 0.5), int(width * p.ratio_cutout + 0.5)
        return {"ox": _randint(0, height + (1 - ch % 2), n, generator),
                "oy": _randint(0, width + (1 - cw % 2), n, generator)}
    raise invalid_value("dsa family", family, f"one of {', '.join(FAMILIES)}")


def apply(family: str, x: Tensor, m: dict[str, Tensor], p: DSAParams = DSA_PARAMS) -> Tensor:
    """Apply one family with magnitudes ``m`` (one row per image, or one row broadcast to all)."""
    n, _, h, w = x.shape
    if family == "color":
        x = x + (_per_image(m["brightness"], x) - 0.5) * p.brightness
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_per_image(m["saturation"], x) * p.saturation) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (_per_image(m["contrast"], x) + p.contrast) + mean
    if family == "scale":
        zeros = torch.zeros_like(m["sx"])
        theta = torch.stack([torch.stack([m["sx"], zeros, zeros], -1), torch.stack([zeros, m["sy"], zeros], -1)], 1)
        return _affine(x, theta)
    if family == "rotate":
        c, s, zeros = torch.cos(m["angle"]), torch.sin(m["angle"]), torch.zeros_like(m["angle"])
        theta = torch.stack([torch.stack([c, -s, zeros], -1), torch.stack([s, c, zeros], -1)], 1)
        return _affine(x, theta)
    if family == "flip":
        return torch.where(m["flip"].to(x.device).view(-1, 1, 1, 1), x.flip(3), x)
    if family == "crop":
        # Shift by whole pixels, filling with zeros: index a 1-pixel zero-padded copy, clamped at its border.
        tx = m["tx"].to(x.device).view(-1, 1, 1).expand(n, 1, 1)
        ty = m["ty"].to(x.device).view(-1, 1, 1).expand(n, 1, 1)
        rows = (torch.arange(h, device=x.device).view(1, h, 1) + tx + 1).clamp(0, h + 1).expand(n, h, w)
        cols = (torch.arange(w, device=x.device).view(1, 1, w) + ty + 1).clamp(0, w + 1).expand(n, h, w)
        batch = torch.arange(n, device=x.device).view(n, 1, 1).expand(n, h, w)
        padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
        return padded[batch, rows, cols].permute(0, 3, 1, 2)
    if family == "cutout":
        ch, cw = int(h * p.ratio_cutout + 0.5), int(w * p.ratio_cutout + 0.5)
        top = m["ox"].to(x.device).view(-1, 1, 1) - ch // 2
        left = m["oy"].to(x.device).view(-1, 1, 1) - cw // 2
        r = torch.arange(h, device=x.device).view(1, h, 1)
        c = torch.arange(w, device=x.device).view(1, 1, w)
        hole = (r >= top) & (r < top + ch) & (c >= left) & (c < left + cw)
        return x * (~hole).unsqueeze(1).to(x.dtype)
    raise invalid_value("dsa family", family, f"one of {', '.join(FAMILIES)}")


def family_index(strategy: str, generator: torch.Generator) -> int | None:
    """The position, in the strategy, of the family one DSA call applies (``None`` when there is none)."""
    families = parse_strategy(strategy)
    return int(_randint(0, len(families), 1, generator).item()) if families else None


def _choose_family(strategy: str, generator: torch.Generator) -> str | None:
    index = family_index(strategy, generator)
    return None if index is None else parse_strategy(strategy)[index]


def dsa(x: Tensor, strategy: str, generator: torch.Generator, p: DSAParams = DSA_PARAMS,
        family_generator: torch.Generator | None = None) -> Tensor:
    """Augment a batch: one family for the call, magnitudes drawn per image.

    The family is drawn from ``family_generator`` when given: a CPU generator there spares a CUDA caller
    the host-device synchronisation that reading a draw from a device generator costs on every call."""
    family = _choose_family(strategy, family_generator or generator)
    if family is None:
        return x
    return apply(family, x, draw(family, x.shape[0], x.shape[2], x.shape[3], generator, p), p).contiguous()


def dsa_indexed(x: Tensor, strategy: str, index: Tensor, generator: torch.Generator,
                p: DSAParams = DSA_PARAMS) -> Tensor:
    """:func:`dsa` with the family given as a device tensor (its :func:`family_index`): no host branch.

    Every family of the strategy is drawn and applied and the one at ``index`` kept, so a CUDA graph can
    capture the call once and replay it whichever family the host draws; the distribution is :func:`dsa`'s,
    the unused families cost a few cheap elementwise and resampling kernels."""
    families = parse_strategy(strategy)
    if not families:
        return x
    n, _, h, w = x.shape
    outs = torch.stack([apply(f, x, draw(f, n, h, w, generator, p), p) for f in families])
    return outs.index_select(0, index.view(1)).squeeze(0)


def dsa_siamese(batches: Sequence[Tensor], strategy: str, generator: torch.Generator,
                p: DSAParams = DSA_PARAMS) -> list[Tensor]:
    """Augment several batches with one shared draw (same family and magnitudes for every image)."""
    family = _choose_family(strategy, generator)
    if family is None:
        return list(batches)
    h, w = batches[0].shape[2:]
    m = draw(family, 1, h, w, generator, p)
    return [apply(family, x, m, p).contiguous() for x in batches]


Augmenter = Callable[[Tensor, torch.Generator], Tensor]


CHAIN_ALWAYS = ("flip", "color")


def diffaug(x: Tensor, strategy: str, generator: torch.Generator, shared: bool = False,
            p: DSAParams = DSA_PARAMS) -> Tensor:
    """DiM's DiffAug chain: flip, colour, one drawn family of the rest, cutout; ``shared``: one draw per batch."""
    families = parse_strategy(strategy)
    n, h, w = (1 if shared else x.shape[0]), x.shape[2], x.shape[3]
    chosen = [f for f in CHAIN_ALWAYS if f in families]
    single = [f for f in families if f not in (*CHAIN_ALWAYS, "cutout")]
    if single:
        chosen.append(single[int(_randint(0, len(single), 1, generator).item())])
    if "cutout" in families:
        chosen.append("cutout")
    for family in chosen:
        x = apply(family, x, draw(family, n, h, w, generator, p), p)
    return x.contiguous()
