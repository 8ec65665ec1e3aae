"""Shared fixtures: a CI-sized grid file, a clean dataset cache, threads pinned for determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmark.data import clear_dataset_cache


@pytest.fixture(autouse=True)
def _isolated_dataset_cache():
    clear_dataset_cache()
    yield
    clear_dataset_cache()


@pytest.fixture
def load_experiment():
    """``load_experiment("d2m_gan_curve")`` → the module of ``experiments/d2m_gan_curve.py``, loaded as running the
    script does (it puts the project root on sys.path): ``experiments/`` is not an installed package."""
    import importlib.util

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "experiments" / f"{name}.py"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session", autouse=True)
def _threads():
    torch.set_num_threads(1)  # tiny tensors: one thread is as fast, and immune to a busy machine


def grid_text(extra: str = "", **fields) -> str:
    """A grid TOML document: top-level keys from ``fields`` (JSON literals are valid TOML here) + ``extra``."""
    return "\n".join(f"{k} = {json.dumps(v)}" for k, v in fields.items()) + "\n" + extra


@pytest.fixture
def ci_grid(tmp_path: Path):
    """Write a tiny grid (digits, random, IPC 1, the ``ci`` protocol) with any field replaced."""

    def make(extra: str = "", **overrides) -> Path:
        fields = {"description": "test grid", "protocol": "ci", "budget": "cpu-small", "datasets": ["digits"],
                  "methods": ["random"], "ipc": [1], "archs": ["convnet"], "seeds": [0]}
        fields.update(overrides)
        path = tmp_path / "grid.toml"
        path.write_text(grid_text(extra, **fields))
        return path

    return make
