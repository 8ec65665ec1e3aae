"""Baseline distillation methods, one module each; importing the package registers them."""

from baselines import coresets, dc, dm, dsa  # noqa: F401
