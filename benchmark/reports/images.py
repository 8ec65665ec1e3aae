"""Image grids of synthetic sets: one row per class, the set's images along it, de-normalised.

For every (dataset, method, variant, IPC) evaluated, the artifact of its lowest distillation seed is loaded
from the store and asked for that IPC (``synthesize``; a generator samples it), exactly as the evaluator
would. Pixels are mapped back with the dataset's mean and std (``x · std + mean``), or, for a dataset
whose spec cannot be read here, stretched per image to [0, 1]. Tiles are enlarged to at least
``MIN_TILE`` pixels (digits are 8 × 8); at most ``MAX_CLASSES`` rows and ``MAX_PER_CLASS`` images per row
are drawn, and the caption says so when a grid is cut.

A grid's file name carries its artifact's key, so an existing file is up to date and is not redrawn.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.data import DataOptions, dataset_spec, load_dataset
from benchmark.distiller import LoadContext, SyntheticSet
from benchmark.errors import BenchmarkError
from benchmark.reports.frame import method_label
from benchmark.reports.plots import Figure, slug
from benchmark.store import ResultsStore

MAX_CLASSES = 20
MAX_PER_CLASS = 10
MIN_TILE = 32
PAD = 2


def denormalise(x: torch.Tensor, dataset: str) -> torch.Tensor:
    """Normalised images → [0, 1] with the dataset's statistics (per-image stretch when unknown)."""
    try:
        spec = dataset_spec(dataset)
        mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
        std = torch.tensor(spec.std).view(1, -1, 1, 1)
        return (x * std + mean).clamp(0, 1)
    except BenchmarkError:
        low = x.amin(dim=(1, 2, 3), keepdim=True)
        high = x.amax(dim=(1, 2, 3), keepdim=True)
        return (x - low) / (high - low).clamp_min(1e-8)


def num_classes_of(dataset: str) -> int | None:
    try:
        return dataset_spec(dataset).num_classes
    except BenchmarkError:
        return None


def grid_image(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) canvas of [0, 1] images (clipped): row c holds (up to ``MAX_PER_CLASS`` of)
    class c's images."""
    n, channels, height, width = images.shape
    classes = labels.argmax(dim=1) if labels.ndim == 2 else labels
    per_class = [images[classes == c][:MAX_PER_CLASS] for c in range(min(num_classes, MAX_CLASSES))]
    cols = max((len(p) for p in per_class), default=1) or 1
    scale = max(1, -(-MIN_TILE // height))
    tile_h, tile_w = height * scale, width * scale
    canvas = np.ones((len(per_class) * (tile_h + PAD) + PAD, cols * (tile_w + PAD) + PAD, channels), dtype=np.float32)
    for r, block in enumerate(per_class):
        for c, img in enumerate(block):
            up = img.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2).permute(1, 2, 0).numpy()
            top, left = PAD + r * (tile_h + PAD), PAD + c * (tile_w + PAD)
            canvas[top:top + tile_h, left:left + tile_w] = up
    pixels = (np.clip(canvas, 0, 1) * 255).round().astype(np.uint8)
    return pixels[..., 0] if channels == 1 else pixels


def pictured_rows(evals: pd.DataFrame) -> pd.DataFrame:
    """The lowest-seed evaluation of each (dataset, method, variant, IPC) that trained on images (IPC > 0)."""
    if evals.empty:
        return evals
    shown = ["dataset", "method", "variant", "ipc"]
    return evals[evals["ipc"] > 0].sort_values("seed").drop_duplicates(shown).sort_values(shown)


def synthetic_set_grids(store: ResultsStore, evals: pd.DataFrame, out_dir: Path,
                        data: DataOptions | None = None) -> tuple[list[Figure], list[str]]:
    """One grid per evaluated (dataset, method, variant, IPC); returns the figures and, for artifacts that
    could not be drawn (missing, from a method not installed here, not an image set), one line each. A grid
    drawn earlier is reused; one that no row names any more (a removed record, a renamed variant) is deleted,
    so the folder holds what the report shows."""
    from benchmark.runner import one_line

    figures, problems, named = [], [], set()
    for _, row in pictured_rows(evals).iterrows():
        dataset, ipc = row["dataset"], int(row["ipc"])
        label = f"{method_label(row)} · {dataset} ipc={ipc}"
        name = slug(dataset, row["method"], row["variant"], ipc)
        path = out_dir / f"synthetic_{name}_{row['distill_key'][:12]}.png"
        named.add(path.name)
        try:
            if not path.is_file():
                draw(store, row, path, data)
        except Exception as error:  # a picture must never stop the report
            problems.append(f"{label}: {one_line(error)}")
            continue
        classes = num_classes_of(dataset)
        cut = ipc > MAX_PER_CLASS or (classes or 0) > MAX_CLASSES
        note = f" (at most {MAX_CLASSES} classes × {MAX_PER_CLASS} images shown)" if cut else ""
        figures.append(Figure(path, f"{label}{note}", "synthetic-set", dataset, ipc, None))
    for stale in out_dir.glob("synthetic_*.png"):
        if stale.name not in named:
            stale.unlink()
    return figures, problems


def draw(store: ResultsStore, row: pd.Series, path: Path, data: DataOptions | None) -> None:
    """Load the row's artifact, synthesise its IPC as the evaluator did, write the grid PNG."""
    from PIL import Image

    dataset: str = row["dataset"]
    train: Callable = lambda: load_dataset(dataset, data).train  # noqa: E731  (only some generators need it)
    artifact = store.load_artifact(row["distill_key"], LoadContext(device=torch.device("cpu"), train=train))
    training_set = artifact.synthesize(int(row["ipc"]), int(row["seed"]))
    if not isinstance(training_set, SyntheticSet):
        raise BenchmarkError("not an image set (the whole training set)")
    labels = training_set.y.cpu()
    classes = num_classes_of(dataset) or (labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1)
    pixels = grid_image(denormalise(training_set.x.detach().float().cpu(), dataset), labels, classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
