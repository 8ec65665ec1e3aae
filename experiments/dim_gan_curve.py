"""Learning curve of DiM's conditional GAN, read on the training split only (issue 4; sizes the `cpu-small` GAN).

Every ``--every`` steps of :func:`baselines.dim_gan.gan_step` (the reference's AC-WGAN-GP update, seeded and
batched as :func:`baselines.dim.pretrained_gan` does) it samples ``--per-class`` images per class from fixed
noise and prints the two numbers of :mod:`experiments.gan_probe` (agreement with an SVC fitted on the
training split, and within-class spread), which need no test data.

Both are printed with the generator in eval mode (as `synthesize` runs it) and in train mode (batch statistics),
so a gap between the two would show the batch-norm running statistics at fault rather than the weights.

    python experiments/dim_gan_curve.py --dataset digits --lr 1e-4 --width 32 --steps 5000 --every 500
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.dim import adam, build_gan, epoch_batch, from_gan_space, to_gan_space  # noqa: E402
from baselines.dim_gan import DiMGenerator, gan_step  # noqa: E402
from benchmark.distiller import get_distiller  # noqa: E402
from benchmark.seeding import generator  # noqa: E402
from experiments.gan_probe import GanProbe, add_curve_arguments, curve_setup  # noqa: E402


def probe(gen: DiMGenerator, reader: GanProbe, spec, per_class: int, train_mode: bool) -> tuple[float, float]:
    """(agreement, spread) of ``per_class`` samples per class from fixed noise, without changing the generator."""
    state = {k: v.clone() for k, v in gen.state_dict().items()}  # train-mode BN would move the running stats
    was_training = gen.training
    gen.train(train_mode)
    labels = torch.arange(spec.num_classes).repeat_interleave(per_class)
    with torch.no_grad():
        x = from_gan_space(gen(gen.noise(labels, generator(0, "dim-gan-curve-probe"))), spec).cpu()
    gen.load_state_dict(state)
    gen.train(was_training)
    return reader.read(x, labels)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_curve_arguments(parser, every=500)
    parser.add_argument("--lr", type=float, default=1e-4, help="GAN Adam lr (the reference's 1e-4)")
    parser.add_argument("--width", type=int, default=32, help="generator and critic channels")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0, help="the GAN's gan_seed")
    args = parser.parse_args(argv)
    train, spec, reader = curve_setup(args, stream="dim-gan-curve-fit")  # the draw of dim-digits-gan.md's table

    reference = get_distiller("dim").default_hparams(spec, None, "paper")  # batch, betas, penalty, noise size
    hp = dataclasses.replace(reference, width=args.width, gan_lr=args.lr, gan_seed=args.seed)
    gen, critic = build_gan(spec, hp, torch.device("cpu"))
    opt_g, opt_d = adam(gen.parameters(), hp.gan_lr, hp), adam(critic.parameters(), hp.gan_lr, hp)
    rng = generator(hp.gan_seed, "dim-gan-noise")
    print(f"{args.dataset}: lr {args.lr}, width {args.width}, batch {hp.gan_batch}, "
          f"{len(train) // hp.gan_batch} steps per epoch; real within-class spread {reader.real_spread:.3f}")
    print("| step | seconds | agreement (eval) | spread (eval) | agreement (train) | spread (train) |")
    print("|---|---|---|---|---|---|")
    start = time.perf_counter()
    for step in range(args.steps + 1):
        if step % args.every == 0 or step == args.steps:
            a_eval, s_eval = probe(gen, reader, spec, args.per_class, train_mode=False)
            a_train, s_train = probe(gen, reader, spec, args.per_class, train_mode=True)
            print(f"| {step} | {time.perf_counter() - start:.0f} | {a_eval:.3f} | {s_eval:.3f} | {a_train:.3f} | "
                  f"{s_train:.3f} |", flush=True)
        if step == args.steps:
            break
        idx = epoch_batch(train, hp.gan_batch, step, hp.gan_seed, "dim-gan-batches")
        gan_step(gen, critic, opt_g, opt_d, to_gan_space(train.images_at(idx), spec), train.labels[idx], rng,
                 hp.gp_weight)


if __name__ == "__main__":
    main()
