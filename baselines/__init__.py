"""Baseline distillation methods, one module each; importing the package registers them."""

from baselines import coresets, datadam, dim, mtt  # noqa: F401
