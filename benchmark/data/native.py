"""Readers for the datasets' own on-disk formats under ``--data-root``.

* MNIST, Fashion-MNIST, KMNIST: torchvision's dataset classes read the IDX files
  (``ROOT/<Class>/raw/*-ubyte``) and download them with ``--download``.
* SVHN (``ROOT/svhn/{train,test}_32x32.mat``) and CIFAR-10/100 (``ROOT/cifar-10-batches-py``,
  ``ROOT/cifar-100-python``): read here with scipy / pickle, because torchvision's classes refuse any file
  whose md5 differs from the official one; torchvision is still what downloads them.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from benchmark.errors import BenchmarkError

Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


def mnist_family_files_present(root: Path, folder: str) -> bool:
    return all((root / folder / "raw" / f).is_file() for f in MNIST_FILES)


def read_mnist_family(root: Path, tv_class: str, download: bool) -> Split:
    """Read an MNIST-format dataset with torchvision's class ``tv_class`` (MNIST, FashionMNIST, KMNIST)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, tv_class)
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except (RuntimeError, ValueError, OSError, AssertionError) as e:
        raise BenchmarkError(f"{root / tv_class / 'raw'}: unreadable {tv_class} files ({e})") from None
    return train.data[:, None].contiguous(), train.targets.long(), test.data[:, None].contiguous(), \
        test.targets.long()


def read_svhn(root: Path, download: bool) -> Split:
    from scipy.io import loadmat

    folder = root / "svhn"
    if download:
        import torchvision.datasets as tvd

        for split in ("train", "test"):
            if not (folder / f"{split}_32x32.mat").is_file():
                tvd.SVHN(str(folder), split=split, download=True)
    out = []
    for split in ("train", "test"):
        path = folder / f"{split}_32x32.mat"
        try:
            mat = loadmat(str(path))
            x, y = mat["X"], mat["y"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BenchmarkError(f"{path}: not a readable SVHN .mat file ({e})") from None
        # SVHN stores (32, 32, 3, N) and labels 1..10 with 10 meaning the digit 0 (as torchvision maps it).
        labels = torch.from_numpy(y.astype(np.int64).reshape(-1) % 10)
        out += [torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1))), labels]
    return out[0], out[1], out[2], out[3]


CIFAR_LAYOUTS = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels",
                "CIFAR10"),
    "cifar100": ("cifar-100-python", ["train"], "test", b"fine_labels", "CIFAR100"),
}


def cifar_files_present(root: Path, name: str) -> bool:
    folder, train_files, test_file, _, _ = CIFAR_LAYOUTS[name]
    return all((root / folder / f).is_file() for f in [*train_files, test_file])


def read_cifar(root: Path, name: str, download: bool) -> Split:
    """Read CIFAR-10/100 python pickle batches (the format of the official ``*-python.tar.gz``)."""
    folder, train_files, test_file, label_key, tv_class = CIFAR_LAYOUTS[name]
    if download and not cifar_files_present(root, name):
        import torchvision.datasets as tvd

        getattr(tvd, tv_class)(str(root), train=True, download=True)

    def read(files: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for f in files:
            path = root / folder / f
            try:
                with open(path, "rb") as fh:
                    batch = pickle.load(fh, encoding="bytes")
                xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch[label_key], dtype=np.int64))
            except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as e:
                raise BenchmarkError(f"{path}: not a readable CIFAR batch file ({type(e).__name__}: {e})") from None
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    x_train, y_train = read(train_files)
    x_test, y_test = read([test_file])
    return x_train, y_train, x_test, y_test
