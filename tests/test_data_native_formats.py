"""Every loader reads tiny files written here in the dataset's own on-disk format."""

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.data import DataOptions, dataset_spec, load_dataset
from benchmark.data.catalog import IMAGENET_SUBSETS
from benchmark.data.shared_npz import SHARED_DATA_ENV
from benchmark.errors import BenchmarkError

RNG = np.random.default_rng(0)


def opts(root: Path) -> DataOptions:
    return DataOptions(data_root=root)


@pytest.fixture(autouse=True)
def no_shared_fallback(monkeypatch, tmp_path):
    """Point the offline-copy lookup at an empty folder so these tests exercise the native readers."""
    empty = tmp_path / "no-shared"
    empty.mkdir()
    monkeypatch.setenv(SHARED_DATA_ENV, str(empty))
    monkeypatch.setattr("benchmark.data.shared_npz.shared_data_dirs", lambda: [empty])


def write_idx(raw: Path, n_train: int = 20, n_test: int = 10) -> tuple[np.ndarray, np.ndarray]:
    raw.mkdir(parents=True)
    x_train = RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    y_train = np.arange(n_train) % 10
    for name, arr, magic in (("train-images-idx3-ubyte", x_train, 0x803),
                             ("t10k-images-idx3-ubyte", x_train[:n_test], 0x803)):
        (raw / name).write_bytes(struct.pack(">IIII", magic, len(arr), 28, 28) + arr.tobytes())
    for name, arr in (("train-labels-idx1-ubyte", y_train), ("t10k-labels-idx1-ubyte", y_train[:n_test])):
        (raw / name).write_bytes(struct.pack(">II", 0x801, len(arr)) + arr.astype(np.uint8).tobytes())
    return x_train, y_train


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_mnist_family_reads_idx_files_through_torchvision(tmp_path, name, folder):
    x, y = write_idx(tmp_path / folder / "raw")
    data = load_dataset(name, opts(tmp_path))
    assert data.train.pixels.dtype == torch.uint8 and data.train.pixels.shape == (20, 1, 28, 28)
    assert torch.equal(data.train.pixels[:, 0], torch.from_numpy(x))
    assert data.train.labels.tolist() == y.tolist()
    assert len(data.test) == 10
    spec = dataset_spec(name)
    expected = (x[3].astype(np.float32) / 255 - spec.mean[0]) / spec.std[0]
    assert np.allclose(data.train.images_at(torch.tensor([3]))[0, 0].numpy(), expected, atol=1e-6)


def write_cifar(root: Path, name: str) -> np.ndarray:
    if name == "cifar10":
        folder, files, test, key = root / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels"
    else:
        folder, files, test, key = root / "cifar-100-python", ["train"], "test", b"fine_labels"
    folder.mkdir(parents=True)
    images = RNG.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    for f in [*files, test]:
        with open(folder / f, "wb") as fh:
            pickle.dump({b"data": images.reshape(4, -1), key: [0, 1, 2, 3]}, fh)
    return images


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reads_python_pickle_batches(tmp_path, name):
    images = write_cifar(tmp_path, name)
    data = load_dataset(name, opts(tmp_path))
    n_files = 5 if name == "cifar10" else 1
    assert data.train.pixels.shape == (4 * n_files, 3, 32, 32)
    assert torch.equal(data.train.pixels[:4], torch.from_numpy(images))
    assert data.test.labels.tolist() == [0, 1, 2, 3]


def test_corrupt_cifar_batch_is_a_one_line_error(tmp_path):
    write_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(BenchmarkError, match="data_batch_3: not a readable CIFAR batch file"):
        load_dataset("cifar10", opts(tmp_path))


def test_svhn_reads_mat_files_and_maps_label_10_to_0(tmp_path):
    from scipy.io import savemat

    (tmp_path / "svhn").mkdir()
    x = RNG.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)
    for split in ("train", "test"):
        savemat(tmp_path / "svhn" / f"{split}_32x32.mat", {"X": x, "y": np.array([[10], [1], [2], [9], [10]])})
    data = load_dataset("svhn", opts(tmp_path))
    assert data.train.labels.tolist() == [0, 1, 2, 9, 0]
    assert torch.equal(data.train.pixels[1], torch.from_numpy(x[..., 1].transpose(2, 0, 1)))


def save_png(path: Path, size: tuple[int, int], value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)


def test_tiny_imagenet_reads_train_tree_and_val_annotations(tmp_path):
    base = tmp_path / "tiny-imagenet-200"
    wnids = ["n02", "n01"]
    base.mkdir()
    (base / "wnids.txt").write_text("\n".join(wnids))
    for i, w in enumerate(sorted(wnids)):
        for j in range(2):
            save_png(base / "train" / w / "images" / f"{w}_{j}.png", (64, 64), 10 * i + j)
    save_png(base / "val" / "images" / "val_0.png", (64, 64), 99)
    (base / "val" / "val_annotations.txt").write_text("val_0.png\tn02\t0\t0\t10\t10\n")
    data = load_dataset("tiny_imagenet", opts(tmp_path))
    assert data.train.pixels.shape == (4, 3, 64, 64)
    assert data.train.labels.tolist() == [0, 0, 1, 1]  # sorted wnids: n01 → 0, n02 → 1
    assert data.test.labels.tolist() == [1]
    assert int(data.test.pixels[0, 0, 0, 0]) == 99


def test_imagenet_subset_picks_standard_class_indices_and_resizes(tmp_path):
    train, val = tmp_path / "imagenet" / "train", tmp_path / "imagenet" / "val"
    wnids = [f"n{i:08d}" for i in range(1000)]
    for w in wnids:
        (train / w).mkdir(parents=True)
        (val / w).mkdir(parents=True)
    subset = IMAGENET_SUBSETS["imagenette"]
    for rank, index in enumerate(subset):
        save_png(train / wnids[index] / "a.png", (200, 150), rank)
        save_png(val / wnids[index] / "b.png", (150, 150), rank)
    save_png(train / wnids[1] / "not_in_subset.png", (150, 150), 255)
    data = load_dataset("imagenette", opts(tmp_path))
    assert data.train.pixels.shape == (10, 3, 128, 128)
    assert data.train.labels.tolist() == list(range(10))
    assert [int(p[0, 0, 0]) for p in data.train.pixels] == list(range(10))


def test_imagenet_subset_without_all_classes_is_a_clear_error(tmp_path):
    (tmp_path / "imagenet" / "train" / "n1").mkdir(parents=True)
    with pytest.raises(BenchmarkError, match="need all 1000 class folders; found 1"):
        load_dataset("imagewoof", opts(tmp_path))


def test_user_npz_source(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=RNG.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8), y_train=np.arange(12) % 3,
             x_test=RNG.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8), y_test=np.arange(3))
    spec = dataset_spec(f"npz:{path}")
    assert (spec.channels, spec.resolution, spec.num_classes, spec.min_class_size) == (3, 16, 3, 4)
    data = load_dataset(f"npz:{path}")
    assert data.train.class_sizes() == [4, 4, 4]
    x = data.train.images_at(torch.arange(12))
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05  # normalised with its own statistics


def test_user_folder_source(tmp_path):
    for split, n in (("train", 3), ("test", 1)):
        for c, cls in enumerate(["cat", "dog"]):
            for i in range(n):
                save_png(tmp_path / "pets" / split / cls / f"{i}.png", (6, 6), 100 * c + i)
    spec = dataset_spec(f"folder:{tmp_path / 'pets'}")
    assert (spec.resolution, spec.num_classes, spec.class_names) == (6, 2, ("cat", "dog"))
    data = load_dataset(f"folder:{tmp_path / 'pets'}")
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert len(data.test) == 2


@pytest.mark.parametrize("name,expected", [
    ("mnist", "MNIST/raw/train-images-idx3-ubyte"), ("cifar10", "cifar-10-batches-py"), ("svhn", "svhn/train_32x32.mat"),
    ("tiny_imagenet", "tiny-imagenet-200"), ("imagenette", "imagenet/train"),
])
def test_missing_dataset_names_the_expected_path(tmp_path, name, expected):
    with pytest.raises(BenchmarkError) as info:
        load_dataset(name, opts(tmp_path / "nowhere"))
    assert expected in str(info.value) and "\n" not in str(info.value)
    offline_copy = f"{name}.npz in" in str(info.value)
    assert offline_copy == (name in ("mnist", "cifar10", "svhn")) == (SHARED_DATA_ENV in str(info.value))


def test_unknown_dataset_and_prefix():
    with pytest.raises(BenchmarkError, match="unknown dataset 'mnsit' \\(did you mean mnist"):
        dataset_spec("mnsit")
    with pytest.raises(BenchmarkError, match="unknown dataset source 'zip:'"):
        dataset_spec("zip:foo")


def test_corrupt_npz_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(BenchmarkError, match="not a readable .npz file"):
        dataset_spec(f"npz:{bad}")
