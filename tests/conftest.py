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
