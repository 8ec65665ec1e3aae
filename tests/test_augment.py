"""DSA: each family against hand-computed results, and the siamese/per-image contract."""

import math

import pytest
import torch

from benchmark.augment import DEFAULT_STRATEGY, apply, draw, dsa, dsa_siamese, parse_strategy, strategy_for
from benchmark.data import dataset_spec
from benchmark.errors import BenchmarkError


def ramp(n: int = 2, c: int = 1, size: int = 8) -> torch.Tensor:
    return torch.arange(n * c * size * size, dtype=torch.float32).view(n, c, size, size) + 1


def test_crop_shifts_by_whole_pixels_and_fills_zeros():
    x = ramp(1)
    out = apply("crop", x, {"tx": torch.tensor([1]), "ty": torch.tensor([-1])})
    # output[i, j] = input[i + 1, j - 1], zero where that falls outside the image
    assert torch.equal(out[0, 0, :7, 1:], x[0, 0, 1:, :7])
    assert out[0, 0, 7].abs().sum() == 0 and out[0, 0, :, 0].abs().sum() == 0


def test_cutout_zeroes_a_half_size_window_centred_on_the_offset():
    x = torch.ones(1, 1, 8, 8)
    out = apply("cutout", x, {"ox": torch.tensor([4]), "oy": torch.tensor([0])})
    hole = out[0, 0] == 0
    assert hole.sum() == 4 * 2  # rows 2..5, columns 0..1 (the window is clipped at the border)
    assert hole[2:6, 0:2].all()


def test_flip_and_colour_follow_the_reference_formulas():
    x = ramp(2, 3, 4)
    flipped = apply("flip", x, {"flip": torch.tensor([True, False])})
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])
    m = {"brightness": torch.tensor([0.75, 0.25]), "saturation": torch.tensor([0.5, 0.5]),
         "contrast": torch.tensor([0.5, 0.5])}
    out = apply("color", x, m)
    y = x + (m["brightness"].view(-1, 1, 1, 1) - 0.5)
    y = (y - y.mean(1, keepdim=True)) * 1.0 + y.mean(1, keepdim=True)  # saturation 0.5 * 2.0 = 1
    y = (y - y.mean((1, 2, 3), keepdim=True)) * 1.0 + y.mean((1, 2, 3), keepdim=True)  # contrast 0.5 + 0.5 = 1
    assert torch.allclose(out, y)


def test_rotate_by_ninety_degrees_permutes_pixels_and_unit_scale_is_identity():
    x = ramp(1, 1, 4)
    out = apply("rotate", x, {"angle": torch.tensor([math.pi / 2])})
    # theta = [[cos, -sin], [sin, cos]] as in the reference: +90 degrees is torch.rot90 by one quarter turn
    assert torch.allclose(out[0, 0], x[0, 0].rot90(1, (0, 1)), atol=1e-4)
    assert torch.allclose(apply("scale", x, {"sx": torch.tensor([1.0]), "sy": torch.tensor([1.0])}), x, atol=1e-5)


def test_magnitudes_are_drawn_in_the_reference_ranges():
    g = torch.Generator().manual_seed(0)
    m = draw("scale", 1000, 32, 32, g)
    assert m["sx"].min() >= 1 / 1.2 and m["sx"].max() <= 1.2
    assert draw("rotate", 1000, 32, 32, g)["angle"].abs().max() <= 15 / 180 * math.pi
    crop = draw("crop", 1000, 32, 32, g)
    assert set(crop["tx"].tolist()) == set(range(-4, 5))  # int(32 * 0.125 + 0.5) = 4
    cut = draw("cutout", 1000, 32, 32, g)
    assert cut["ox"].min() == 0 and cut["ox"].max() == 32  # even size 16: offsets 0..32


def test_siamese_shares_one_draw_across_images_and_batches():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 8, 8)
    a, b = dsa_siamese([x, x[:1].repeat(2, 1, 1, 1)], DEFAULT_STRATEGY, g)
    assert torch.allclose(a[0], b[0]) and torch.allclose(b[0], b[1])


def test_per_image_mode_is_deterministic_per_generator_and_differentiable():
    x = torch.randn(6, 3, 8, 8, requires_grad=True)
    for seed in range(12):  # enough draws to visit every family
        a = dsa(x, DEFAULT_STRATEGY, torch.Generator().manual_seed(seed))
        b = dsa(x, DEFAULT_STRATEGY, torch.Generator().manual_seed(seed))
        assert torch.equal(a, b)
        a.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_strategy_parsing_and_no_flip_for_digits():
    assert parse_strategy("none") == ()
    assert strategy_for(dataset_spec("mnist")) == "color_crop_cutout_scale_rotate"
    assert strategy_for(dataset_spec("cifar10")) == DEFAULT_STRATEGY
    with pytest.raises(BenchmarkError, match="invalid dsa_strategy='color_blur'"):
        parse_strategy("color_blur")
