"""DiM's DiffAugment chain: shared or per-image draws, every always-on family applied."""

import torch

from benchmark.augment import diffaug


def test_shared_draw_transforms_identical_images_identically_and_per_image_does_not():
    x = torch.rand(1, 3, 8, 8).repeat(6, 1, 1, 1)
    shared = diffaug(x, "color_crop_cutout", torch.Generator().manual_seed(0), shared=True)
    assert all(torch.equal(shared[0], shared[i]) for i in range(6)) and not torch.equal(shared, x)
    single = diffaug(x, "color_crop_cutout", torch.Generator().manual_seed(0))
    assert not torch.equal(single[0], single[1])


def test_cutout_is_always_applied_and_none_is_the_identity():
    x = torch.ones(4, 1, 8, 8)
    out = diffaug(x, "cutout", torch.Generator().manual_seed(1))
    assert ((out == 0).flatten(1).sum(1) > 0).all()  # a hole in every image: cutout is not one choice among many
    assert torch.equal(diffaug(x, "none", torch.Generator()), x)
