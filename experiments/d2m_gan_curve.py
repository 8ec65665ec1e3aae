"""Learning curve of D2M's generator pre-training, read on the training split only (issue 3).

`d2m-gen` on digits gains 6 points from IPC 1 to IPC 10 where ten real images per class gain 27: the
pre-trained generator draws little within-class variety, and `d2m` inherits it. This trains the GAN exactly as
:func:`d2m.pretrain.train_gan` does (hinge loss, the preset's width, batch, learning rates and D steps, each
overridable) and every ``--every`` updates samples ``--per-class`` images per class the way the artifact's
``synthesize`` does (eval mode, the benchmark's sampling streams), printing the two numbers of
:mod:`experiments.gan_probe`: *agreement* with an SVC fitted on the training split and within-class *spread*
beside the real images'. No test data is read, so a pre-training budget chosen from it is not tuned on the test
set.

    python experiments/d2m_gan_curve.py --dataset digits --budget cpu-small --iterations 3000 --lr 2e-4
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.distiller import get_distiller  # noqa: E402
from d2m.artifact import GeneratorArtifact  # noqa: E402
from d2m.generator import Generator  # noqa: E402
from d2m.pretrain import train_gan  # noqa: E402
from experiments.gan_probe import GanProbe, add_curve_arguments, curve_setup  # noqa: E402


def sample_reading(net: Generator, reader: GanProbe, per_class: int) -> tuple[float, float]:
    """(agreement, spread) of the set ``synthesize(per_class, seed 0)`` would return for this generator."""
    return reader.read_artifact(GeneratorArtifact(net, {}), per_class)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_curve_arguments(parser, every=250)
    parser.add_argument("--budget", default="cpu-small", help="the preset whose pre-training is the base")
    parser.add_argument("--iterations", type=int, help="generator updates (default: the preset's)")
    parser.add_argument("--lr", type=float, help="generator and discriminator Adam lr (default: the preset's)")
    parser.add_argument("--width", type=int, help="generator width (default: the preset's)")
    parser.add_argument("--batch", type=int, help="pre-training batch (default: the preset's)")
    parser.add_argument("--d-steps", type=int, help="D updates per G update (default: the preset's)")
    args = parser.parse_args(argv)
    train, spec, reader = curve_setup(args)
    preset = get_distiller("d2m").default_hparams(spec, None, args.budget)
    overrides = {"pretrain_iterations": args.iterations, "pretrain_lr_generator": args.lr,
                 "pretrain_lr_discriminator": args.lr, "generator_width": args.width,
                 "pretrain_batch": args.batch, "pretrain_d_steps": args.d_steps}
    hp = dataclasses.replace(preset, **{k: v for k, v in overrides.items() if v is not None})
    config = hp.pretrain_config(hp.pretrain_iterations)
    print(f"{args.dataset}: {config}; real within-class spread {reader.real_spread:.3f}")
    print("| updates | seconds | agreement | spread |")
    print("|---|---|---|---|")
    start = time.perf_counter()

    def after_update(it: int, net: Generator) -> None:
        updates = it + 1
        if updates % args.every == 0 or updates == config.iterations:
            agreement, spread = sample_reading(net, reader, args.per_class)
            print(f"| {updates} | {time.perf_counter() - start:.0f} | {agreement:.3f} | {spread:.3f} |", flush=True)

    with tempfile.TemporaryDirectory() as work:
        train_gan(train, spec, config, torch.device("cpu"), Path(work), after_update=after_update)


if __name__ == "__main__":
    main()
