"""ZCA whitening: the reference's kornia fit on raw pixels, its cache, and the evaluator whitening the test set."""

import dataclasses

import kornia
import pytest
import torch

from benchmark.data import InMemoryImages, load_dataset
from benchmark.distiller import SyntheticSet
from benchmark.errors import BenchmarkError
from benchmark.evaluate import evaluate, preprocessed_test_set
from benchmark.protocol import CI
from benchmark.zca import WhitenedImages, check_zca, dataset_zca, fit_zca

SPEC = dataclasses.replace(load_dataset("digits").spec, name="tiny-grey", resolution=3, mean=(0.3,), std=(0.2,))


def correlated_images(n: int = 400, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(9, 9, generator=g)
    return (torch.randn(n, 9, generator=g) @ mixing).view(n, 1, 3, 3)


def test_whitened_images_have_identity_covariance_and_zero_mean():
    x = correlated_images()
    zca = fit_zca(x, SPEC, eps=1e-8)
    white = zca(x).flatten(1)
    assert white.mean(0).abs().max() < 1e-4
    assert torch.allclose(torch.cov(white.T), torch.eye(9), atol=1e-3)


def test_fit_is_kornias_on_unnormalised_pixels():
    """The reference whitens [0, 1] pixels, so the dataset normalisation is undone before the fit (eps matters)."""
    x = correlated_images()
    ours = fit_zca(x, SPEC, eps=0.1)(x)
    raw = x * 0.2 + 0.3
    reference = kornia.enhance.ZCAWhitening(eps=0.1).fit(raw)(raw)
    assert torch.allclose(ours, reference, atol=1e-5)
    on_normalised = kornia.enhance.ZCAWhitening(eps=0.1).fit(x)(x)
    assert not torch.allclose(ours, on_normalised, atol=1e-2)


def test_fit_is_cached_and_a_corrupt_cache_is_refitted(tmp_path, capsys):
    images = InMemoryImages(correlated_images() * 0.2 + 0.3, torch.arange(400) % 10, SPEC)
    first = dataset_zca(images, 0.1, tmp_path, torch.device("cpu"))
    [cached] = (tmp_path / "zca").glob("*.pt")
    cached.write_bytes(cached.read_bytes()[:-7] + b"garbage")
    again = dataset_zca(images, 0.1, tmp_path, torch.device("cpu"))
    assert "fails its checksum; recomputing it" in capsys.readouterr().err
    assert torch.equal(first.transform, again.transform) and torch.equal(first.mean, again.mean)


def test_whitened_view_keeps_labels_and_classes():
    data = load_dataset("digits")
    zca = fit_zca(data.train.images_at(torch.arange(len(data.train))), data.spec, 0.1)
    view = WhitenedImages(data.test, zca)
    idx = data.test.indices_of_class(3)[:5]
    assert torch.equal(view.labels, data.test.labels) and view.class_sizes() == data.test.class_sizes()
    assert torch.allclose(view.images_at(idx), zca(data.test.images_at(idx)))


def test_evaluator_whitens_the_test_set_with_the_training_split_fit(tmp_path):
    data = load_dataset("digits")
    x = torch.cat([data.train.images_of_class(c, 2, torch.Generator().manual_seed(c)) for c in range(10)])
    hints = {"zca": {"eps": 0.1}, "lr": 0.05}
    synthetic = SyntheticSet(x, torch.arange(10).repeat_interleave(2), hints)
    test, done = preprocessed_test_set(synthetic, data.test, data.train, tmp_path, torch.device("cpu"))
    expected = fit_zca(data.train.images_at(torch.arange(len(data.train))), data.spec, 0.1)
    idx = torch.arange(7)
    assert done == {"zca": {"eps": 0.1}}
    assert torch.allclose(test.images_at(idx), expected(data.test.images_at(idx)), atol=1e-5)
    one_epoch = dataclasses.replace(CI, epochs=1)
    result = evaluate(synthetic, data.test, data.spec, "convnet", one_epoch, [0], torch.device("cpu"),
                      train=data.train, cache_dir=tmp_path)
    assert result.extra["preprocessing"] == {"zca": {"eps": 0.1}} and result.protocol["lr"] == 0.05
    unwhitened = SyntheticSet(x, synthetic.y)
    assert preprocessed_test_set(unwhitened, data.test, None, None, torch.device("cpu")) == (data.test, {})
    with pytest.raises(BenchmarkError, match="ZCA-whitened; evaluating it needs the real training split"):
        evaluate(synthetic, data.test, data.spec, "convnet", one_epoch, [0], torch.device("cpu"))


def test_whitening_refuses_bad_settings():
    with pytest.raises(BenchmarkError, match="invalid zca eps=0.0"):
        check_zca(SPEC, 0.0)
    big = dataclasses.replace(SPEC, channels=3, resolution=128)
    with pytest.raises(BenchmarkError, match="needs a 49152x49152 matrix"):
        check_zca(big, 0.1)
