"""Two numbers that say whether a conditional GAN draws each class, and its variety, read on the training split.

* *agreement*: the fraction of samples an RBF SVC fitted on real training images assigns to the class they
  were generated for (does the generator draw the class it was asked for?);
* *spread*: the within-class pixel standard deviation of the samples, averaged over pixels and classes, beside
  the real images' (one image per class — mode collapse — reads as zero).

No test data is touched, so a GAN budget chosen with them is not tuned on the test set. Used by
``dim_gan_curve.py`` and ``d2m_gan_curve.py``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from sklearn.svm import SVC

from benchmark.data.images import LabelledImages
from benchmark.data.registry import load_dataset
from benchmark.data.spec import DatasetSpec
from benchmark.distiller import Artifact
from benchmark.seeding import generator


def class_spread(x: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Mean over classes of the mean per-pixel standard deviation within the class."""
    return float(torch.stack([x[labels == c].flatten(1).std(0).mean() for c in range(num_classes)]).mean())


@dataclass
class GanProbe:
    """A classifier of the real classes and the real images' spread, fitted once, read at every probe."""

    svc: SVC
    num_classes: int
    real_spread: float

    @classmethod
    def fit(cls, train: LabelledImages, num_classes: int, limit: int, seed: int,
            stream: str = "gan-probe-fit") -> GanProbe:
        """An SVC on ``limit`` training images drawn with ``seed`` from ``stream``, and those images' spread."""
        fit = torch.randperm(len(train), generator=generator(seed, stream))[:limit]
        real, labels = train.images_at(fit).cpu(), train.labels[fit].cpu()
        svc = SVC(gamma="scale").fit(real.flatten(1).numpy(), labels.numpy())
        return cls(svc, num_classes, class_spread(real, labels, num_classes))

    def read(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
        """(agreement, spread) of generated images ``x`` drawn for ``labels`` (in the dataset's normalisation)."""
        x, labels = x.detach().cpu(), labels.cpu()
        agreement = float((torch.as_tensor(self.svc.predict(x.flatten(1).numpy())) == labels).float().mean())
        return agreement, class_spread(x, labels, self.num_classes)

    def read_artifact(self, artifact: Artifact, per_class: int) -> tuple[float, float]:
        """(agreement, spread) of the set ``artifact.synthesize(per_class, 0)`` draws, as an evaluation samples it."""
        synthetic = artifact.synthesize(per_class, 0)
        return self.read(synthetic.x, synthetic.y)


def add_curve_arguments(parser: argparse.ArgumentParser, every: int | None) -> None:
    """The options every probe script shares: data, probe size, threads, and for a learning curve
    (``every`` given) its cadence."""
    parser.add_argument("--dataset", default="digits")
    if every is not None:
        parser.add_argument("--every", type=int, default=every, help="updates between probes")
    parser.add_argument("--per-class", type=int, default=50, help="samples per class at each probe")
    parser.add_argument("--fit-limit", type=int, default=5000, help="training images the SVC is fitted on")
    parser.add_argument("--probe-seed", type=int, default=0, help="which training images the SVC is fitted on")
    parser.add_argument("--threads", type=int, default=1)


def curve_setup(args: argparse.Namespace,
                stream: str = "gan-probe-fit") -> tuple[LabelledImages, DatasetSpec, GanProbe]:
    """Threads set, the training split loaded and the probe fitted on it, as ``add_curve_arguments`` asked."""
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    probe = GanProbe.fit(data.train, data.spec.num_classes, args.fit_limit, args.probe_seed, stream)
    return data.train, data.spec, probe
