"""Readers for datasets stored as image files: Tiny-ImageNet, ImageNet (subsets and 1K) and ImageFolder.

Images are decoded with Pillow through torchvision's ``default_loader``, resized so the shorter side is
the target resolution and centre-cropped (the MTT/GLaD preprocessing for the 128×128 ImageNet subsets,
``utils.py::get_dataset``), and kept as uint8.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from benchmark.errors import BenchmarkError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def decode_image(path: Path | str, resolution: int | None, channels: int = 3) -> np.ndarray:
    """One image file → (C, H, W) uint8, resized (shorter side) and centre-cropped to ``resolution``."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import functional as TF

    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if channels == 3 else "L")
            if resolution is not None and img.size != (resolution, resolution):
                img = TF.center_crop(TF.resize(img, resolution), [resolution, resolution])
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise BenchmarkError(f"{path}: not a readable image ({e})") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def decode_images(paths: Sequence[Path | str], resolution: int | None, channels: int = 3,
                  threads: int = 4) -> torch.Tensor:
    """Decode many files in parallel (Pillow releases the GIL) into one (N, C, H, W) uint8 tensor."""
    if not paths:
        return torch.zeros((0, channels, resolution or 1, resolution or 1), dtype=torch.uint8)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        arrays = list(pool.map(lambda p: decode_image(p, resolution, channels), paths))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise BenchmarkError(f"images under {Path(paths[0]).parent.parent} differ in size {sorted(shapes)[:3]}; "
                             "give a resolution so they are resized")
    return torch.from_numpy(np.stack(arrays))


def list_class_folders(folder: Path) -> list[str]:
    """Sorted class sub-folder names: the class index convention of torchvision's ImageFolder."""
    if not folder.is_dir():
        raise BenchmarkError(f"{folder}: folder not found")
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def files_of_classes(folder: Path, classes: Sequence[str]) -> tuple[list[str], list[int]]:
    """Image files of the given class folders (in order) and their class positions."""
    from torchvision.datasets.folder import make_dataset

    class_to_idx = {c: i for i, c in enumerate(classes)}
    try:
        samples = make_dataset(str(folder), class_to_idx, extensions=IMAGE_EXTENSIONS)
    except FileNotFoundError as e:
        raise BenchmarkError(f"{folder}: {e}") from None
    return [p for p, _ in samples], [c for _, c in samples]


def read_image_folder_split(folder: Path, classes: Sequence[str], resolution: int | None,
                            channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    paths, labels = files_of_classes(folder, classes)
    return decode_images(paths, resolution, channels), torch.tensor(labels, dtype=torch.long)


def read_tiny_imagenet(root: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """Tiny-ImageNet-200 as distributed: ``train/<wnid>/images/*.JPEG``, ``val/images`` + annotations."""
    base = root / "tiny-imagenet-200"
    wnids_file, annotations = base / "wnids.txt", base / "val" / "val_annotations.txt"
    for needed in (wnids_file, annotations, base / "train"):
        if not needed.exists():
            raise BenchmarkError(f"tiny_imagenet: {needed} not found; unpack tiny-imagenet-200.zip "
                                 f"(http://cs231n.stanford.edu/tiny-imagenet-200.zip) under {root}")
    wnids = sorted(w for w in wnids_file.read_text().split() if w)
    index = {w: i for i, w in enumerate(wnids)}
    train_paths, train_labels = [], []
    for w in wnids:
        files = sorted(p for p in (base / "train" / w / "images").glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        train_paths += files
        train_labels += [index[w]] * len(files)
    val_paths, val_labels = [], []
    for line in annotations.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        if parts[1] not in index:
            raise BenchmarkError(f"{annotations}: class {parts[1]!r} is not in wnids.txt")
        val_paths.append(base / "val" / "images" / parts[0])
        val_labels.append(index[parts[1]])
    return (decode_images(train_paths, 64), torch.tensor(train_labels), decode_images(val_paths, 64),
            torch.tensor(val_labels), wnids)


def imagenet_classes(root: Path, class_indices: Sequence[int] | None) -> list[str]:
    """The wnid folders of ImageNet-1K (``ROOT/imagenet/train``) at the given standard class indices.

    The standard index of a class is its position among the 1,000 sorted wnids, which is how MTT's
    ``Config`` lists the subsets (e.g. imagenette = [0, 217, 482, ...]).
    """
    folder = root / "imagenet" / "train"
    if not folder.is_dir():
        raise BenchmarkError(f"ImageNet not found: expected {folder}/<wnid>/*.JPEG and "
                             f"{root / 'imagenet' / 'val'}/<wnid>/*.JPEG (the ILSVRC-2012 train and val sets, "
                             "val sorted into class folders); download them from image-net.org")
    wnids = list_class_folders(folder)
    if class_indices is None:
        return wnids
    if len(wnids) != 1000:
        raise BenchmarkError(f"{folder}: ImageNet subsets are defined by standard class index and need all "
                             f"1000 class folders; found {len(wnids)}")
    return [wnids[i] for i in class_indices]
