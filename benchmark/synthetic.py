"""Learnable synthetic images: initialisation from real images or noise, and the labels that go with them.

The DC/DSA/DM/DataDAM/MTT reference scripts all start from ``torch.randn`` pixels, overwritten with
random real images of each class when ``--init real``; labels are ``[0]*ipc + [1]*ipc + ...``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from benchmark.augment import parse_strategy
from benchmark.data.images import LabelledImages
from benchmark.data.spec import DatasetSpec
from benchmark.distiller import PixelArtifact, SyntheticSet
from benchmark.errors import invalid_value
from benchmark.iterate import run_iterations
from benchmark.models import MODELS

if TYPE_CHECKING:
    from benchmark.distiller import DistillTask

INITS = ("real", "noise")


def require_positive_ipc(ipc: int | None) -> None:
    """One-line error unless ``ipc`` is a positive count (what a generator, which has no class size to
    respect, asks of it)."""
    if ipc is None or ipc < 1:
        raise invalid_value("ipc", ipc, "a positive number of images per class")


def check_ipc(spec: DatasetSpec, ipc: int | None) -> None:
    """One-line error unless ``ipc`` is a positive count that the smallest class of ``spec`` can supply."""
    require_positive_ipc(ipc)
    if spec.min_class_size is not None and ipc > spec.min_class_size:
        raise invalid_value("ipc", ipc, f"at most {spec.min_class_size}, the smallest class of {spec.name}")


def check_learning_settings(hparams: Any, positive: tuple[str, ...]) -> None:
    """One-line errors for the settings pixel-learning methods share: the counts and rates named in
    ``positive``, ``momentum_img`` in [0, 1), and a known ``init``, ``dsa_strategy`` and ``arch``."""
    for name in positive:
        if not getattr(hparams, name) > 0:
            raise invalid_value(name, getattr(hparams, name), "a positive number")
    if not 0 <= hparams.momentum_img < 1:
        raise invalid_value("momentum_img", hparams.momentum_img, "a number in [0, 1)")
    if hparams.init not in INITS:
        raise invalid_value("init", hparams.init, f"one of {', '.join(INITS)}")
    parse_strategy(hparams.dsa_strategy)
    MODELS.get(hparams.arch)


def class_labels(num_classes: int, ipc: int, device: torch.device | str = "cpu") -> Tensor:
    return torch.arange(num_classes, device=device).repeat_interleave(ipc)


def init_synthetic_images(train: LabelledImages, spec: DatasetSpec, ipc: int, init: str, generator: torch.Generator,
                          device: torch.device) -> Tensor:
    """A (classes·ipc, C, H, W) leaf tensor requiring grad, class-major like the references."""
    if init not in INITS:
        raise invalid_value("init", init, f"one of {', '.join(INITS)}")
    if init == "real":
        x = torch.cat([train.images_of_class(c, ipc, generator) for c in range(spec.num_classes)]).to(device)
        if len(x) != spec.num_classes * ipc:
            raise invalid_value("ipc", ipc, f"at most {min(train.class_sizes())}, the smallest class")
    else:
        x = torch.randn((spec.num_classes * ipc, *spec.shape), generator=generator, device=generator.device).to(device)
    return x.detach().clone().requires_grad_(True)


class PixelMatchingState:
    """What the pixel-matching loops of DC/DSA and DM keep between iterations: the task and its resolved
    hyper-parameters, the learnable images (``hp.init``) and their SGD optimiser (``hp.lr_img``,
    ``hp.momentum_img``) as reference ``main.py`` / ``main_DM.py`` build ``image_syn`` and
    ``optimizer_img``, one random stream per name in :attr:`streams`, and whether DSA is on."""

    streams: tuple[str, ...] = ("networks", "real-batches", "dsa")

    def __init__(self, task: DistillTask) -> None:
        hp = task.hparams
        self.task, self.hp = task, hp
        self.classes = task.spec.num_classes
        self.images = init_synthetic_images(task.train, task.spec, task.ipc, hp.init, task.generator("init"),
                                            task.device)
        self.optimizer = torch.optim.SGD([self.images], lr=hp.lr_img, momentum=hp.momentum_img)
        self.generators = {purpose: task.generator(purpose) for purpose in self.streams}
        self.augment = parse_strategy(hp.dsa_strategy) != ()

    def state(self) -> dict:
        """What a checkpoint saves and a resume restores."""
        return {"images": self.images, "image_optimizer": self.optimizer, **self.generators}

    def step(self, it: int) -> float:
        """One iteration of the method; returns its loss."""
        raise NotImplementedError

    def run(self, checkpoint_every: int, desc: str) -> PixelArtifact:
        """The budget's iterations of :meth:`step` (checkpointed, resumable), then the images as an artifact."""
        task, hp = self.task, self.hp
        total = task.budget.cap(hp.iterations)
        report = run_iterations(total, self.step, self.state(), task.work_dir, checkpoint_every=checkpoint_every,
                                log_every=max(1, total // 100), progress=task.progress, desc=desc)
        synthetic = SyntheticSet(self.images.detach().cpu(), class_labels(self.classes, task.ipc))
        return PixelArtifact(synthetic, task.ipc, {**report.summary(), "init": hp.init,
                                                   "dsa_strategy": hp.dsa_strategy})
