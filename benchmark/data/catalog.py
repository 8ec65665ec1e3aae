"""Every dataset the benchmark knows, with the normalisation constants the reference code uses.

Mean/std values are those of VICO-UoE/DatasetCondensation ``utils.py::get_dataset`` (MNIST,
Fashion-MNIST, SVHN, CIFAR-10/100, Tiny-ImageNet) and GeorgeCazenavette/mtt-distillation ``utils.py``
(ImageNet subsets, ImageNet statistics); KMNIST's are the values published with the dataset's loaders;
the digits' are computed on the fixed training split of :mod:`benchmark.data.digits`.
ImageNet subset class indices follow mtt-distillation ``utils.py::Config`` (also used by GLaD).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from benchmark.data import image_files, native
from benchmark.data.digits import load_digits_split
from benchmark.data.images import InMemoryImages, LabelledImages
from benchmark.data.registry import DataOptions, DatasetEntry, register_dataset, register_dynamic_source
from benchmark.data.shared_npz import SHARED_DATA_ENV, find_shared_npz, read_npz_split, shared_data_dirs
from benchmark.data.spec import DatasetSpec
from benchmark.data.streaming import StreamingImages
from benchmark.errors import BenchmarkError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGENET_SUBSETS = {
    "imagenette": (0, 217, 482, 491, 497, 566, 569, 571, 574, 701),
    "imagewoof": (193, 182, 258, 162, 155, 167, 159, 273, 207, 229),
    "imagefruit": (953, 954, 949, 950, 951, 957, 952, 945, 943, 948),
    "imageyellow": (309, 986, 954, 951, 987, 779, 599, 291, 72, 11),
    "imagemeow": (281, 282, 283, 284, 285, 291, 292, 290, 289, 287),
    "imagesquawk": (84, 130, 88, 144, 145, 22, 96, 9, 100, 89),
}
SUBSET_DESCRIPTIONS = {
    "imagenette": "10 easy ImageNet classes (tench, springer, cassette player, chain saw, church, ...)",
    "imagewoof": "10 dog breeds from ImageNet (hard, fine-grained)",
    "imagefruit": "10 fruit classes from ImageNet (pineapple, banana, strawberry, ...)",
    "imageyellow": "10 yellow things from ImageNet (bee, lady's slipper, banana, school bus, ...)",
    "imagemeow": "10 cat classes from ImageNet (tabby, bengal, persian, ..., lion, tiger)",
    "imagesquawk": "10 bird classes from ImageNet (peacock, flamingo, macaw, ...)",
}


def in_memory(split: tuple, spec: DatasetSpec, source: str) -> tuple[LabelledImages, LabelledImages]:
    x_train, y_train, x_test, y_test = split
    return InMemoryImages(x_train, y_train, spec, source), InMemoryImages(x_test, y_test, spec, source)


def missing(spec: DatasetSpec, expected: Path | str, how: str) -> BenchmarkError:
    shared = (f" or {spec.name}.npz in {shared_data_dirs()[0]} (${SHARED_DATA_ENV} moves that folder)"
              if spec.family in ("mnist", "cifar") else "")
    return BenchmarkError(f"dataset {spec.name} not found: expected {expected}{shared}; {how}")


def native_else_offline(spec: DatasetSpec, options: DataOptions, present: bool, read: Callable[[bool], tuple],
                        where: Path, expected: Path) -> tuple[LabelledImages, LabelledImages]:
    """The dataset's native files where present, else its offline ``.npz`` copy beside the project, else
    (``--download``) the native files fetched by ``read(True)``; otherwise one line naming what is missing."""
    if present:
        return in_memory(read(False), spec, str(where))
    shared = find_shared_npz(spec.name)
    if shared is not None:
        return in_memory(read_npz_split(shared), spec, f"{shared} (offline copy)")
    if options.download:
        return in_memory(read(True), spec, str(where))
    raise missing(spec, expected, "pass --download to fetch it with torchvision")


# --- digits -----------------------------------------------------------------------------------------

def load_digits(spec: DatasetSpec, options: DataOptions) -> tuple[LabelledImages, LabelledImages]:
    return in_memory(load_digits_split(), spec, "sklearn.datasets.load_digits (bundled)")


register_dataset(DatasetSpec(
    name="digits", channels=1, resolution=8, num_classes=10, mean=(0.3054,), std=(0.3761,), family="digits",
    source="scikit-learn bundled UCI optdigits (Alpaydin & Kaynak 1998); fixed stratified 80/20 split",
    train_size=1437, test_size=360, allow_flip=False, min_class_size=139,
    description="8x8 handwritten digits bundled with scikit-learn: the embedded default, no download",
), load_digits)


# --- MNIST family (IDX via torchvision) ---------------------------------------------------------------

def mnist_loader(tv_class: str):
    def load(spec: DatasetSpec, options: DataOptions) -> tuple[LabelledImages, LabelledImages]:
        root = Path(options.data_root)
        raw = root / tv_class / "raw"
        return native_else_offline(spec, options, native.mnist_family_files_present(root, tv_class),
                                   lambda download: native.read_mnist_family(root, tv_class, download), raw,
                                   raw / "train-images-idx3-ubyte")

    return load


for _name, _cls, _mean, _std, _min, _desc in [
    ("mnist", "MNIST", 0.1307, 0.3081, 5421, "MNIST handwritten digits, 28x28 grey, 60k/10k"),
    ("fashion_mnist", "FashionMNIST", 0.2861, 0.3530, 6000, "Fashion-MNIST clothing, 28x28 grey, 60k/10k"),
    ("kmnist", "KMNIST", 0.1918, 0.3483, 6000, "Kuzushiji-MNIST cursive Japanese, 28x28 grey, 60k/10k"),
]:
    register_dataset(DatasetSpec(
        name=_name, channels=1, resolution=28, num_classes=10, mean=(_mean,), std=(_std,), family="mnist",
        source=f"torchvision.datasets.{_cls}", train_size=60000, test_size=10000,
        allow_flip=_name != "mnist" and _name != "kmnist", min_class_size=_min, description=_desc,
    ), mnist_loader(_cls))


# --- SVHN and CIFAR (native files read here) -----------------------------------------------------------

def load_svhn(spec: DatasetSpec, options: DataOptions) -> tuple[LabelledImages, LabelledImages]:
    root = Path(options.data_root)
    if not (root / "svhn" / "train_32x32.mat").is_file() and not options.download:
        raise missing(spec, root / "svhn" / "train_32x32.mat", "pass --download to fetch it with torchvision")
    return in_memory(native.read_svhn(root, options.download), spec, str(root / "svhn"))


register_dataset(DatasetSpec(
    name="svhn", channels=3, resolution=32, num_classes=10, mean=(0.4377, 0.4438, 0.4728),
    std=(0.1980, 0.2010, 0.1970), family="cifar", source="torchvision.datasets.SVHN (format 2, cropped digits)",
    train_size=73257, test_size=26032, allow_flip=False, min_class_size=4659,
    description="Street View House Numbers, 32x32 colour digits, 73k/26k",
), load_svhn)


def cifar_loader(name: str):
    def load(spec: DatasetSpec, options: DataOptions) -> tuple[LabelledImages, LabelledImages]:
        root = Path(options.data_root)
        folder = root / native.CIFAR_LAYOUTS[name][0]
        return native_else_offline(spec, options, native.cifar_files_present(root, name),
                                   lambda download: native.read_cifar(root, name, download), folder, folder)

    return load


register_dataset(DatasetSpec(
    name="cifar10", channels=3, resolution=32, num_classes=10, mean=(0.4914, 0.4822, 0.4465),
    std=(0.2023, 0.1994, 0.2010), family="cifar", source="CIFAR-10 python batches (Krizhevsky 2009)",
    train_size=50000, test_size=10000, min_class_size=5000,
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    description="CIFAR-10, 32x32 colour, 10 classes, 50k/10k",
), cifar_loader("cifar10"))
register_dataset(DatasetSpec(
    name="cifar100", channels=3, resolution=32, num_classes=100, mean=(0.5071, 0.4866, 0.4409),
    std=(0.2673, 0.2564, 0.2762), family="cifar", source="CIFAR-100 python batches (Krizhevsky 2009)",
    train_size=50000, test_size=10000, min_class_size=500,
    description="CIFAR-100, 32x32 colour, 100 classes, 50k/10k",
), cifar_loader("cifar100"))


# --- Tiny-ImageNet and ImageNet ------------------------------------------------------------------------

def load_tiny(spec: DatasetSpec, options: DataOptions) -> tuple[LabelledImages, LabelledImages]:
    root = Path(options.data_root)
    x_train, y_train, x_test, y_test, _ = image_files.read_tiny_imagenet(root)
    return in_memory((x_train, y_train, x_test, y_test), spec, str(root / "tiny-imagenet-200"))


register_dataset(DatasetSpec(
    name="tiny_imagenet", channels=3, resolution=64, num_classes=200, mean=IMAGENET_MEAN, std=IMAGENET_STD,
    family="tiny", source="Tiny-ImageNet-200 (cs231n), val split as test", train_size=100000, test_size=10000,
    min_class_size=500, description="Tiny-ImageNet, 64x64 colour, 200 classes, 100k/10k",
), load_tiny)


def subset_loader(indices: tuple[int, ...]):
    def load(spec: DatasetSpec, options: DataOptions) -> tuple[LabelledImages, LabelledImages]:
        root = Path(options.data_root)
        wnids = image_files.imagenet_classes(root, indices)
        train = image_files.read_image_folder_split(root / "imagenet" / "train", wnids, spec.resolution)
        test = image_files.read_image_folder_split(root / "imagenet" / "val", wnids, spec.resolution)
        return in_memory((*train, *test), spec, str(root / "imagenet"))

    return load


for _name, _indices in IMAGENET_SUBSETS.items():
    register_dataset(DatasetSpec(
        name=_name, channels=3, resolution=128, num_classes=10, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        family="imagenet-subset", source=f"ImageNet-1K classes {list(_indices)} (MTT utils.py Config)",
        train_size=None, test_size=500, min_class_size=732, description=SUBSET_DESCRIPTIONS[_name] + ", 128x128",
    ), subset_loader(_indices))


def imagenet1k_loader(spec: DatasetSpec, options: DataOptions) -> tuple[LabelledImages, LabelledImages]:
    root = Path(options.data_root)
    wnids = image_files.imagenet_classes(root, None)
    splits = []
    for split in ("train", "val"):
        paths, labels = image_files.files_of_classes(root / "imagenet" / split, wnids)
        splits.append(StreamingImages(paths, labels, spec, str(root / "imagenet"), options.device))
    return splits[0], splits[1]


for _res in (64, 128):
    register_dataset(DatasetSpec(
        name=f"imagenet1k-{_res}", channels=3, resolution=_res, num_classes=1000, mean=IMAGENET_MEAN,
        std=IMAGENET_STD, family="imagenet", source="ILSVRC-2012 train/val (ImageFolder layout), streamed",
        train_size=1281167, test_size=50000, streaming=True, min_class_size=732,
        description=f"ImageNet-1K at {_res}x{_res}, 1000 classes, decoded from JPEG on demand",
    ), imagenet1k_loader)


# --- user data: npz:PATH and folder:PATH ---------------------------------------------------------------

def channel_stats(pixels: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = pixels.float() / (255.0 if pixels.dtype == torch.uint8 else 1.0)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def user_spec(name: str, x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
              source: str) -> DatasetSpec:
    if x_train.shape[2] != x_train.shape[3]:
        raise BenchmarkError(f"{name}: images must be square, got {tuple(x_train.shape[2:])}")
    if len(x_train) == 0 or len(x_test) == 0:
        raise BenchmarkError(f"{name}: needs at least one training and one test image")
    num_classes = int(y_train.max()) + 1
    mean, std = channel_stats(x_train)
    counts = torch.bincount(y_train, minlength=num_classes)
    return DatasetSpec(
        name=name, channels=x_train.shape[1], resolution=x_train.shape[2], num_classes=num_classes, mean=mean,
        std=std, family=family_for_resolution(x_train.shape[2]), source=source, train_size=len(x_train),
        test_size=len(x_test), min_class_size=int(counts.min()), description=f"user data from {source}",
    )


def family_for_resolution(resolution: int) -> str:
    """Which reference family's defaults suit user data of this size."""
    if resolution <= 16:
        return "digits"
    if resolution <= 28:
        return "mnist"
    if resolution <= 32:
        return "cifar"
    return "tiny" if resolution <= 64 else "imagenet-subset"


def resolve_npz(arg: str) -> DatasetEntry:
    path = Path(arg).expanduser()
    if not path.is_file():
        raise BenchmarkError(f"dataset npz:{arg}: file not found (expected an .npz with x_train, y_train, "
                             "x_test, y_test)")
    split = read_npz_split(path)
    spec = user_spec(f"npz:{arg}", split[0], split[1], split[2], str(path))
    return DatasetEntry(spec, lambda s, o: in_memory(split, s, str(path)))


def resolve_folder(arg: str) -> DatasetEntry:
    root = Path(arg).expanduser()
    test_dir = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)
    if not (root / "train").is_dir() or test_dir is None:
        raise BenchmarkError(f"dataset folder:{arg}: expected {root}/train/<class>/*.png and "
                             f"{root}/test/<class>/*.png (or val/) in ImageFolder layout")
    classes = image_files.list_class_folders(root / "train")
    paths, _ = image_files.files_of_classes(root / "train", classes[:1])
    if not paths:
        raise BenchmarkError(f"dataset folder:{arg}: no images in {root / 'train' / classes[0]}")
    first = image_files.decode_image(paths[0], None)
    resolution = min(first.shape[1:])
    train = image_files.read_image_folder_split(root / "train", classes, resolution)
    test = image_files.read_image_folder_split(test_dir, classes, resolution)
    spec = user_spec(f"folder:{arg}", train[0], train[1], test[0], str(root))
    spec = DatasetSpec(**{**spec.__dict__, "class_names": tuple(classes), "num_classes": len(classes)})
    return DatasetEntry(spec, lambda s, o: in_memory((*train, *test), s, str(root)))


register_dynamic_source("npz", resolve_npz)
register_dynamic_source("folder", resolve_folder)
