"""What the harness and the methods need to know about a dataset before touching its pixels."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DatasetSpec:
    """Shape, classes and normalisation of one dataset.

    ``family`` groups datasets for per-family method defaults (the reference repositories key their
    hyper-parameters this way): ``digits`` (8×8), ``mnist`` (28×28 grey), ``cifar`` (32×32 colour),
    ``tiny`` (64×64), ``imagenet-subset`` (128×128, 10 classes) and ``imagenet`` (ImageNet-1K).
    """

    name: str
    channels: int
    resolution: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    family: str
    source: str
    train_size: int | None = None
    test_size: int | None = None
    allow_flip: bool = True
    min_class_size: int | None = None
    streaming: bool = False
    class_names: tuple[str, ...] = field(default=(), compare=False)
    description: str = field(default="", compare=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.resolution, self.resolution)

    def summary(self) -> dict:
        """The fields a result record keeps to identify the data it was computed on."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "num_classes": self.num_classes,
            "family": self.family,
            "train_size": self.train_size,
            "test_size": self.test_size,
        }
