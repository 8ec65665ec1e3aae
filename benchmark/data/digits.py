"""scikit-learn's bundled handwritten digits (UCI optdigits test set, 1,797 images): the embedded default.

Kept at their native 8×8 (no interpolation, and the cheapest dataset to train on: the point of the smoke
grid). Pixel values 0..16 are scaled to [0, 1]. The split is fixed and stratified: 80 % train / 20 % test
with ``sklearn.model_selection.train_test_split(test_size=0.2, stratify=y, random_state=0)``, giving
1,437 training images (139–146 per class) and 360 test images.
"""

from __future__ import annotations

import numpy as np
import torch

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


def load_digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, bunch.target, test_size=DIGITS_TEST_FRACTION, stratify=bunch.target,
        random_state=DIGITS_SPLIT_SEED,
    )
    return (torch.from_numpy(x_train), torch.from_numpy(y_train.astype(np.int64)),
            torch.from_numpy(x_test), torch.from_numpy(y_test.astype(np.int64)))
