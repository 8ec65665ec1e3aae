"""``val:NAME``: a held-out part of NAME's training split as the test split, so hyper-parameters are chosen
without reading NAME's test images."""

import json
import re

import pytest
import torch

from benchmark.data import clear_dataset_cache, dataset_spec, load_dataset
from benchmark.data.validation import held_out_counts
from benchmark.errors import BenchmarkError
from benchmark.run import main as run_main


def rows(pixels: torch.Tensor) -> list[tuple]:
    return [tuple(x.flatten().tolist()) for x in pixels]


def test_held_out_counts_are_proportional_by_largest_remainder():
    assert held_out_counts([10, 5, 5], 0.2) == [2, 1, 1]
    # 0.25 · 20 = 5 in all; exact shares 1.75, 1.75, 1.5: the two largest remainders get the extra images
    assert held_out_counts([7, 7, 6], 0.25) == [2, 2, 1]
    with pytest.raises(BenchmarkError, match="would leave class 0 \\(1 image\\) without training images"):
        held_out_counts([1, 9], 0.5)


def test_the_split_partitions_the_training_split_only_and_is_fixed():
    parent, val = load_dataset("digits"), load_dataset("val:digits")
    spec = dataset_spec("val:digits")
    assert (len(val.train), len(val.test)) == (spec.train_size, spec.test_size) == (1150, 287)
    assert spec.train_size + spec.test_size == parent.spec.train_size
    assert min(val.train.class_sizes()) >= spec.min_class_size
    assert [round(n / s, 1) for n, s in zip(val.test.class_sizes(), parent.train.class_sizes(), strict=True)] \
        == [0.2] * 10  # stratified
    label_of = dict(zip(rows(parent.train.pixels), parent.train.labels.tolist(), strict=True))
    held, kept = rows(val.test.pixels), rows(val.train.pixels)
    assert [label_of[h] for h in held] == val.test.labels.tolist()  # training images, with their labels
    assert sorted(held + kept) == sorted(rows(parent.train.pixels))  # a partition of the training split
    assert val.train.spec.mean == parent.spec.mean and val.train.spec.family == parent.spec.family
    first = val.test.pixels.clone()
    clear_dataset_cache()
    assert torch.equal(load_dataset("val:digits").test.pixels, first)  # the same cut in every process
    assert len(load_dataset("val:digits@0.1").test) == round(0.1 * 1437)


@pytest.mark.parametrize("name,message", [
    ("val:digits@0.7", "invalid validation fraction of val:digits@0.7='0.7': a number in (0, 0.5]"),
    ("val:digits@half", "invalid validation fraction of val:digits@half='half'"),
    ("val:nope", "unknown dataset 'nope'"),
    ("val:imagenet1k-64", "dataset val:imagenet1k-64: imagenet1k-64 streams from files"),
])
def test_bad_validation_names_are_one_line_errors(name, message):
    with pytest.raises(BenchmarkError, match="^" + re.escape(message)) as err:
        dataset_spec(name)
    assert "\n" not in str(err.value)


def test_a_grid_on_a_validation_split_records_it_under_its_own_name(tmp_path, ci_grid, capsys):
    results = tmp_path / "results"
    grid = ci_grid(methods=["random"], ipc=[1])
    assert run_main(["--no-progress", "--device", "cpu", "--grid", str(grid), "--datasets", "val:digits",
                     "--results", str(results)]) == 0
    assert "val:digits" in capsys.readouterr().out
    (record,) = [json.loads(p.read_text()) for p in (results / "records" / "eval").glob("*.json")]
    assert record["config"]["dataset"] == "val:digits"
    (distill,) = [json.loads(p.read_text()) for p in (results / "records" / "distill").glob("*.json")]
    assert distill["config"]["dataset_spec"]["test_size"] == 287
