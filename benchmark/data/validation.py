"""``val:NAME``: a dataset whose test split is a held-out part of NAME's *training* split.

A hyper-parameter chosen on test accuracy overfits the leaderboard. A grid on ``val:NAME`` chooses it on
data no reported number uses: the training split is NAME's training split less a stratified fraction,
the "test" split is that fraction (``val:NAME`` holds out 20 %, the digits' own test fraction;
``val:NAME@0.1`` another). The cut is fixed (seed 0, whatever the cell or run), so every method and
evaluation on ``val:NAME`` sees one partition, and NAME's real test split is never read. Normalisation
and family stay NAME's, so the defaults and preprocessing are the ones the final test run uses. Records
name the dataset ``val:NAME``, keeping validation numbers apart from test numbers in every report.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from benchmark.data.images import InMemoryImages, LabelledImages
from benchmark.data.registry import DataOptions, DatasetEntry, dataset_entry, register_dynamic_source
from benchmark.data.spec import DatasetSpec
from benchmark.errors import BenchmarkError, invalid_value

PREFIX = "val"
DEFAULT_FRACTION = 0.2
SPLIT_SEED = 0


def parse(arg: str) -> tuple[str, float]:
    """``NAME`` or ``NAME@FRACTION`` → (NAME, fraction held out)."""
    name, sep, text = arg.rpartition("@")
    if not sep:
        return arg, DEFAULT_FRACTION
    try:
        fraction = float(text)
    except ValueError:
        fraction = math.nan
    if not 0.0 < fraction <= 0.5:
        raise invalid_value(f"validation fraction of {PREFIX}:{arg}", text,
                            f"a number in (0, 0.5], e.g. {PREFIX}:mnist@0.1")
    return name, fraction


def held_out_total(size: int, fraction: float) -> int:
    """How many of ``size`` training images a split holds out; the spec's sizes and the split share it."""
    return round(fraction * size)


def held_out_counts(class_sizes: list[int], fraction: float) -> list[int]:
    """Validation images per class: ``round(fraction · total)`` in all, spread over the classes in proportion
    to their size by largest remainder (ties to the lower class index). With a fraction of at most a half
    only a class of one image can lose all of it: refused."""
    total = held_out_total(sum(class_sizes), fraction)
    exact = [fraction * n for n in class_sizes]
    counts = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(exact)), key=lambda c: (counts[c] - exact[c], c))
    for c in by_remainder[: total - sum(counts)]:
        counts[c] += 1
    emptied = [c for c, (k, n) in enumerate(zip(counts, class_sizes, strict=True)) if k >= n]
    if emptied:
        raise BenchmarkError(f"a validation split of {fraction:g} would leave class {emptied[0]} "
                             f"({class_sizes[emptied[0]]} image) without training images")
    return counts


def split_indices(images: LabelledImages, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, validation indices) of ``images``, stratified by class, drawn with seed 0."""
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    counts = held_out_counts(images.class_sizes(), fraction)
    train, val = [], []
    for c, k in enumerate(counts):
        idx = images.indices_of_class(c).cpu()
        shuffled = idx[torch.randperm(len(idx), generator=generator)]
        val.append(shuffled[:k])
        train.append(shuffled[k:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def validation_spec(name: str, parent: DatasetSpec, fraction: float) -> DatasetSpec:
    """NAME's spec with the split's sizes (exact: :func:`held_out_counts` holds out :func:`held_out_total`)."""
    held = held_out_total(parent.train_size, fraction) if parent.train_size is not None else None
    smallest = parent.min_class_size
    return dataclasses.replace(
        parent, name=name, test_size=held,
        train_size=None if held is None else parent.train_size - held,
        # n - ceil(f·n) never exceeds what a class of n keeps and grows with n: a bound for the smallest class
        min_class_size=None if smallest is None else smallest - math.ceil(fraction * smallest),
        description=f"{parent.name}'s training split less a stratified {fraction:g} held out as its test split",
    )


def resolve_validation(arg: str) -> DatasetEntry:
    full_name = f"{PREFIX}:{arg}"
    name, fraction = parse(arg)
    parent = dataset_entry(name)
    if parent.spec.streaming:
        raise BenchmarkError(f"dataset {full_name}: {name} streams from files; a validation split needs a dataset "
                             "held in memory")
    spec = validation_spec(full_name, parent.spec, fraction)

    def load(spec: DatasetSpec, options: DataOptions) -> tuple[LabelledImages, LabelledImages]:
        train, _ = parent.loader(parent.spec, options)
        if not isinstance(train, InMemoryImages):
            raise BenchmarkError(f"dataset {full_name}: {name} is not held in memory")
        keep, held = split_indices(train, fraction)
        source = f"{train.source} (training split less a held-out {fraction:g}, seed {SPLIT_SEED})"
        return (InMemoryImages(train.pixels[keep], train.labels[keep], spec, source),
                InMemoryImages(train.pixels[held], train.labels[held], spec, source))

    return DatasetEntry(spec, load)


def is_validation(dataset: str) -> bool:
    return dataset.startswith(PREFIX + ":")


register_dynamic_source(PREFIX, resolve_validation)
