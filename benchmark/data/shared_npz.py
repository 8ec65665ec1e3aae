"""Offline copies of real datasets as ``.npz`` files (``x_train``, ``y_train``, ``x_test``, ``y_test``).

A checkout of this project may sit beside a ``shared/data/`` folder holding MNIST, Fashion-MNIST and
CIFAR-10 in that form (see its README). Loaders fall back to it when ``--data-root`` lacks the native
files, and the record names the file, so a number computed on the JPEG-lossy CIFAR-10 copy says so.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from benchmark.errors import BenchmarkError

SHARED_DATA_ENV = "D2M_BENCH_SHARED_DATA"


def shared_data_dirs() -> list[Path]:
    """Folders searched for offline ``NAME.npz`` copies, in order."""
    dirs = []
    if os.environ.get(SHARED_DATA_ENV):
        dirs.append(Path(os.environ[SHARED_DATA_ENV]))
    project_root = Path(__file__).resolve().parents[2]
    dirs += [project_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    return list(dict.fromkeys(dirs))


def find_shared_npz(name: str) -> Path | None:
    for folder in shared_data_dirs():
        path = folder / f"{name}.npz"
        if path.is_file():
            return path
    return None


def read_npz_split(path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test) as NCHW tensors; pixels keep their dtype (uint8 or float)."""
    try:
        with np.load(path) as data:
            arrays = [data[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    except KeyError as e:
        raise BenchmarkError(
            f"{path}: missing array {e}; an npz dataset needs x_train, y_train, x_test, y_test"
        ) from None
    except (OSError, ValueError) as e:
        raise BenchmarkError(f"{path}: not a readable .npz file ({e})") from None
    x_train, y_train, x_test, y_test = arrays
    return to_nchw(x_train, path), torch.from_numpy(y_train.astype(np.int64)), to_nchw(x_test, path), \
        torch.from_numpy(y_test.astype(np.int64))


def to_nchw(x: np.ndarray, origin: Path | str) -> torch.Tensor:
    """(N,H,W) grey or (N,H,W,C) / (N,C,H,W) colour arrays → an NCHW tensor, uint8 or float in [0, 1]."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4:
        raise BenchmarkError(f"{origin}: images must be (N,H,W) or (N,H,W,C), got shape {x.shape}")
    if x.dtype != np.uint8:
        x = x.astype(np.float32)
        if x.size and (x.min() < 0 or x.max() > 1):
            raise BenchmarkError(f"{origin}: float images must lie in [0, 1] (or be stored as uint8)")
    return torch.from_numpy(np.ascontiguousarray(x))
