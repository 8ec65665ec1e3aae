import pytest
import torch

from benchmark.data import dataset_spec, load_dataset
from benchmark.data.images import InMemoryImages
from benchmark.data.shared_npz import find_shared_npz
from benchmark.data.spec import DatasetSpec
from benchmark.errors import BenchmarkError


def test_digits_split_is_fixed_stratified_and_normalised_with_its_statistics():
    data = load_dataset("digits")
    assert (len(data.train), len(data.test)) == (1437, 360)
    assert min(data.train.class_sizes()) == dataset_spec("digits").min_class_size == 139
    x = data.train.images_at(torch.arange(len(data.train)))
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-3
    assert load_dataset("digits") is data  # cached per process


def tiny_spec(classes: int = 3) -> DatasetSpec:
    return DatasetSpec(name="tiny", channels=1, resolution=2, num_classes=classes, mean=(0.5,), std=(0.5,),
                       family="digits", source="test")


def test_images_of_class_draws_distinct_members_of_that_class_deterministically():
    pixels = torch.arange(12, dtype=torch.uint8).view(12, 1, 1, 1).expand(12, 1, 2, 2).contiguous()
    labels = torch.tensor([0, 1, 2] * 4)
    images = InMemoryImages(pixels, labels, tiny_spec())
    idx = images.sample_indices_of_class(1, 3, torch.Generator().manual_seed(0))
    assert len(set(idx.tolist())) == 3 and all(labels[i] == 1 for i in idx)
    again = images.sample_indices_of_class(1, 3, torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)
    x = images.images_of_class(2, 4, torch.Generator().manual_seed(1))
    assert sorted(((x[:, 0, 0, 0] * 0.5 + 0.5) * 255).round().tolist()) == [2, 5, 8, 11]


def test_batches_cover_every_image_once():
    images = InMemoryImages(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10) % 3, tiny_spec())
    seen = torch.cat([y for _, y in images.batches(4, torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == sorted((torch.arange(10) % 3).tolist())


def test_bad_labels_or_shapes_are_rejected():
    with pytest.raises(BenchmarkError, match="labels must lie in \\[0, 2\\]"):
        InMemoryImages(torch.zeros(2, 1, 2, 2), torch.tensor([0, 5]), tiny_spec())
    with pytest.raises(BenchmarkError, match="expected \\(1, 2, 2\\)"):
        InMemoryImages(torch.zeros(2, 3, 2, 2), torch.tensor([0, 1]), tiny_spec())


@pytest.mark.skipif(find_shared_npz("mnist") is None, reason="shared/data/mnist.npz not present")
def test_mnist_falls_back_to_the_offline_copy(tmp_path):
    data = load_dataset("mnist")
    assert "offline copy" in data.source
    assert (len(data.train), len(data.test)) == (60000, 10000)
    assert data.train.class_sizes()[5] == 5421
