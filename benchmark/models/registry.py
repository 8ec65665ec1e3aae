"""The evaluation-architecture registry: ``@register_model(name)`` builders taking a :class:`DatasetSpec`.

Models are initialised under an explicit seed (``build_model(name, spec, seed=...)``): torch's module
initialisers draw from the global generator, so the build forks the RNG state and seeds it, leaving the
caller's random stream untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from benchmark.data.spec import DatasetSpec
from benchmark.registry import Registry, first_doc_line

ModelBuilder = Callable[..., nn.Module]
MODELS: Registry[ModelBuilder] = Registry("architecture")


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    return MODELS.register(name)


def build_model(name: str, spec: DatasetSpec, seed: int | None = None, device: torch.device | str = "cpu",
                **kwargs) -> nn.Module:
    """Build architecture ``name`` for ``spec``'s channels, resolution and classes, seeded if asked."""
    builder = MODELS.get(name)
    if seed is None:
        return builder(spec, **kwargs).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(spec, **kwargs).to(device)


def list_models(pattern: str = "*") -> list[str]:
    return MODELS.names(pattern)


def describe_model(name: str) -> str:
    return first_doc_line(MODELS.get(name))


def flat_features(features: nn.Module, spec: DatasetSpec) -> int:
    """Number of features ``features`` produces for one image of ``spec``: sized by a dry run, so every
    architecture adapts to any resolution instead of hard-coding 32×32 arithmetic. Run in eval mode so
    batch-norm layers start with untouched running statistics."""
    was_training = features.training
    features.eval()
    try:
        with torch.no_grad():
            return int(features(torch.zeros(1, *spec.shape)).flatten(1).shape[1])
    finally:
        features.train(was_training)
