"""Baseline distillation methods, one module each; importing the package registers them."""

from baselines import coresets, datadam, dc, dim, dm, dsa, mtt  # noqa: F401
