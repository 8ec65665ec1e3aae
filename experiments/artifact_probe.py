"""Agreement and spread of the sets stored generator artifacts draw, read on the training split (issue 3).

The learning-curve scripts read a GAN while it trains; this reads what a results store already holds: for each
finished distillation of ``--methods`` on ``--dataset`` whose artifact serves any IPC (D2M, its ablations,
DiM), it samples ``synthesize(--per-class, 0)`` as an evaluation does and prints the two numbers of
:mod:`experiments.gan_probe` (agreement with an SVC fitted on training images, within-class spread beside the
real images'). No test image is read.

    python experiments/artifact_probe.py --results results --dataset mnist --methods d2m,d2m-gen
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.cli import comma_list, guarded  # noqa: E402
from benchmark.distiller import LoadContext  # noqa: E402
from benchmark.errors import BenchmarkError  # noqa: E402
from benchmark.store import ResultsStore  # noqa: E402
from experiments.gan_probe import add_curve_arguments, curve_setup  # noqa: E402

SHOWN = ("generator_width", "pretrain_iterations", "pretrain_lr_generator", "iterations", "task_balance")
"""The hyper-parameters printed beside each artifact: what tells its generator and distillation apart."""


def probe_store(args: argparse.Namespace) -> int:
    """Print one row per finished generator distillation the arguments select; rows for artifacts the store lacks
    say so."""
    if not (args.results / "records" / "distill").is_dir():
        raise BenchmarkError(f"--results: {args.results} holds no distillation records (expected a results store)")
    methods, seeds = comma_list("--methods", args.methods), set(comma_list("--seeds", args.seeds, int))
    train, _, probe = curve_setup(args)
    store = ResultsStore(args.results)
    context = LoadContext(device=torch.device("cpu"), train=lambda: train)
    print(f"{args.dataset}: real within-class spread {probe.real_spread:.3f}")
    print(f"| method | seed | {' | '.join(SHOWN)} | agreement | spread | artifact |")
    print("|---" * (len(SHOWN) + 5) + "|")
    records = sorted((r for r in store.records("distill") if r["result"]["serves_any_ipc"]
                      and r["config"]["dataset"] == args.dataset and r["config"]["method"] in methods
                      and r["config"]["seed"] in seeds),
                     key=lambda r: (r["config"]["method"], r["config"]["seed"], r["key"]))
    for record in records:
        config = record["config"]
        if not store.has_artifact(record["key"]):
            print(f"| {config['method']} | {config['seed']} | (artifact {record['key']} not in this store) |")
            continue
        agreement, spread = probe.read_artifact(store.load_artifact(record["key"], context), args.per_class)
        shown = " | ".join(str(config["hparams"].get(name, "")) for name in SHOWN)
        print(f"| {config['method']} | {config['seed']} | {shown} | {agreement:.3f} | {spread:.3f} | {record['key']} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_curve_arguments(parser, every=None)
    parser.add_argument("--results", type=Path, required=True, help="the results store to read")
    parser.add_argument("--methods", default="d2m,d2m-gen", help="comma-separated method names")
    parser.add_argument("--seeds", default="0", help="comma-separated distillation seeds")
    args = parser.parse_args(argv)
    return guarded(lambda: probe_store(args))


if __name__ == "__main__":
    sys.exit(main())
