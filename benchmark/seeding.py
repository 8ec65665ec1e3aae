"""Explicit, independent random streams derived from a cell's seed.

Every consumer of randomness (subset draws, model initialisation, augmentation, batch order) gets its
own generator seeded by a hash of (seed, purpose), so adding a draw in one place never shifts another's
stream, and nothing depends on time or on global RNG state.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed determined by ``parts`` (e.g. ``derive_seed(seed, "eval-batches")``)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(*parts: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh generator on ``device`` seeded by :func:`derive_seed`."""
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))
