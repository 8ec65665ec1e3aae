"""Evaluation speed: our evaluator against the bare-compute floor and the reference evaluation loop.

For each dataset and IPC, K networks (one per seed) are trained for ``--epochs`` epochs on one random real
set under the paper protocol's settings (SGD, batch 256, DSA per batch) and tested on the whole real test
set, side by side in one process, interleaved seed by seed:

* **ours** — :func:`benchmark.evaluate.evaluate` (fp32, and bf16 autocast with ``--precisions fp32,bf16``
  unless a first probe shows a bf16 step over 1.5x slower than an fp32 one: on CPUs without native bf16
  units autocast emulates it and is many times slower, which the probe prints);
* **whole** (on a CPU) — ours with the cache-sized pieces of :mod:`benchmark.blocking` switched off: every
  minibatch and test batch in one forward, as before those pieces;
* **together** (``--together``; by default on CUDA only) — the same K networks trained as one stacked,
  vmapped ensemble (:mod:`benchmark.ensemble`), at each precision kept;
* **graphs** (``--cuda-graphs``; by default on CUDA only) — that ensemble with its steps replayed as CUDA
  graphs (:mod:`benchmark.cuda_graphs`);
* **floor** — the same network's forward + backward + SGD step on batches of the same sizes, with no data
  shuffling, no augmentation and no loss bookkeeping, each batch in one forward: what the arithmetic alone
  costs when the activations stream through memory (ours, in cache-sized pieces, can be below it);
* **reference** (with ``--reference PATH``, a VICO-UoE/DatasetCondensation checkout the person
  benchmarking fetched; never part of this project) — its ``utils.evaluate_synset`` (DataLoader per epoch,
  ``DiffAugment`` per batch), run from a temporary copy with the two torch-version fixes of
  ``benchmarks/faithfulness.py``, its ``epoch`` wrapped to time training and testing apart.

It prints, per variant, seconds per training epoch and per test pass (per network), the wall time of all
K networks, the speed-up over the reference (its K networks' wall time over the variant's), the overhead
over the floor, and the accuracy (mean ± std over the K networks), so speed never hides a
regression. Accuracy after a short ``--epochs`` is low; it is there to compare the variants, not the paper.

    python -m benchmarks.eval_speed --datasets mnist --ipc 1,10 --seeds 5 --epochs 20 \
        --reference /path/to/DatasetCondensation
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from benchmark import blocking
from benchmark.augment import strategy_for
from benchmark.data import load_dataset
from benchmark.distiller import SyntheticSet
from benchmark.ensemble import SEEDS_TOGETHER, together_on
from benchmark.evaluate import evaluate
from benchmark.models import build_model
from benchmark.protocol import PAPER
from benchmark.provenance import device_description
from benchmark.seeding import derive_seed, generator
from benchmarks.faithfulness import patched_copy


def random_set(data, ipc: int) -> SyntheticSet:
    g = generator(0, "eval-speed-set")
    x = torch.cat([data.train.images_of_class(c, ipc, g) for c in range(data.spec.num_classes)])
    return SyntheticSet(x, torch.arange(data.spec.num_classes, device=x.device).repeat_interleave(ipc))


@dataclass
class Run:
    """Seconds spent training and testing some networks, and their accuracies."""

    train_seconds: float
    test_seconds: float
    accuracies: list[float]

    @property
    def wall_seconds(self) -> float:
        return self.train_seconds + self.test_seconds

    def __add__(self, other: Run) -> Run:
        return Run(self.train_seconds + other.train_seconds, self.test_seconds + other.test_seconds,
                   self.accuracies + other.accuracies)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def floor_seconds_per_epoch(data, s: SyntheticSet, epochs: int, seed: int, precision: str = "fp32",
                            warmup_epochs: int = 0) -> float:
    """Forward + backward + SGD step on fixed batches of the evaluator's sizes: the arithmetic alone, at
    ``precision``, timed after ``warmup_epochs`` untimed ones."""
    net = build_model("convnet", data.spec, seed=seed, device=s.x.device)
    opt = PAPER.optimizer(net.parameters())
    batches = list(zip(s.x.split(PAPER.batch_size), s.y.split(PAPER.batch_size), strict=True))
    for epoch in range(warmup_epochs + epochs):
        if epoch == warmup_epochs:
            synchronize(s.x.device)
            start = time.perf_counter()
        for x, y in batches:
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    synchronize(s.x.device)
    return (time.perf_counter() - start) / epochs


EMULATED = 1.5  # a step this much slower than fp32 means emulated arithmetic (11x on an AVX2-only CPU), not noise


def usable_precisions(data, precisions: list[str]) -> list[str]:
    """Probe each precision's raw step cost; drop one over ``EMULATED`` × fp32 (no native units), saying so."""
    probe = SyntheticSet(data.train.images_at(torch.arange(32)), data.train.labels[:32])
    cost = {q: floor_seconds_per_epoch(data, probe, 2, 0, q, warmup_epochs=1)
            for q in dict.fromkeys(["fp32", *precisions])}
    for q in precisions:
        print(f"# probe: {q} fwd+bwd step on 32 images: {cost[q]:.3f} s ({cost[q] / cost['fp32']:.2f}x fp32)")
    kept = ["fp32", *(q for q in precisions if q != "fp32" and cost[q] <= EMULATED * cost["fp32"])]
    for q in sorted(set(precisions) - set(kept)):
        print(f"# {q} skipped: over {EMULATED}x slower than fp32 on this device (no native {q} arithmetic), so it "
              "cannot be a fast path")
    return kept


PATHS = ("loop", "whole", "together", "graphs")
"""How our evaluator trains the K networks: one after another (``whole``: the same with the cache-sized pieces
off), as one stacked ensemble, or that ensemble's steps replayed as CUDA graphs."""
ONE_AFTER_ANOTHER = ("loop", "whole")


@contextmanager
def pieces_off(off: bool):
    """Our evaluator with :mod:`benchmark.blocking`'s pieces as large as any batch, while ``off``."""
    cpu = blocking.CHUNK_PIXELS["cpu"]
    saved = dict(cpu)
    if off:
        cpu.update(dict.fromkeys(saved, 2**40))
    try:
        yield
    finally:
        cpu.update(saved)


def ours(data, s: SyntheticSet, epochs: int, seeds: list[int], precision: str, path: str) -> Run:
    """Our evaluator on ``seeds`` along ``path`` (one of :data:`PATHS`)."""
    protocol = PAPER.overridden({"epochs": epochs, "models": len(seeds), "precision": precision})
    with pieces_off(path == "whole"):
        result = evaluate(s, data.test, data.spec, "convnet", protocol, seeds, s.x.device,
                          seeds_together="off" if path in ONE_AFTER_ANOTHER else "on",
                          cuda_graphs="on" if path == "graphs" else "off")
    if result.extra["cuda_graphs"] != (path == "graphs"):
        raise SystemExit(f"the {path} path did not run as asked (cuda_graphs={result.extra['cuda_graphs']})")
    return Run(result.train_seconds, result.test_seconds, result.accuracies)


class Reference:
    """The reference evaluation loop, imported from a patched temporary copy of the checkout."""

    def __init__(self, checkout: Path, spec, device: torch.device) -> None:
        self.copy = patched_copy(checkout)
        sys.path.insert(0, str(self.copy))
        import utils  # the reference's module, from the temporary copy

        self.utils = utils
        self.spec = spec
        self.clock = {"train": 0.0, "test": 0.0}
        original = utils.epoch

        def timed_epoch(mode, *args, **kwargs):
            start = time.perf_counter()
            out = original(mode, *args, **kwargs)
            self.clock[mode] += time.perf_counter() - start
            return out

        utils.epoch = timed_epoch
        self.args = SimpleNamespace(device=str(device), lr_net=PAPER.lr, batch_train=PAPER.batch_size, dsa=True,
                                    dsa_strategy=strategy_for(spec), dsa_param=utils.ParamDiffAug(), dc_aug_param=None)

    def run(self, data, s: SyntheticSet, epochs: int) -> Run:
        """One network; the reference trains ``epoch_eval_train + 1`` epochs, so it is given ``epochs - 1``."""
        self.args.epoch_eval_train = epochs - 1
        test = torch.utils.data.TensorDataset(data.test.images_at(torch.arange(len(data.test))), data.test.labels)
        loader = torch.utils.data.DataLoader(test, batch_size=256, shuffle=False, num_workers=0)
        net = self.utils.get_network("ConvNet", self.spec.channels, self.spec.num_classes,
                                     (self.spec.resolution, self.spec.resolution))
        self.clock.update(train=0.0, test=0.0)
        _, _, acc = self.utils.evaluate_synset(0, net, s.x.clone(), s.y.clone(), loader, self.args)
        return Run(self.clock["train"], self.clock["test"], [100.0 * acc])

    def close(self) -> None:
        shutil.rmtree(self.copy, ignore_errors=True)


def mean_std(values: list[float]) -> str:
    return f"{statistics.fmean(values):.2f} ± {statistics.pstdev(values):.2f}"


def measure(data, s: SyntheticSet, a: argparse.Namespace, variants: list[tuple[str, str, str]],
            reference: Reference | None) -> tuple[dict[str, Run], float]:
    """Every variant on the same set and seeds, interleaved seed by seed so a change of machine load hits
    them alike (an ensemble variant trains all K at once, after the loop); and the median floor s/epoch."""
    seeds = [derive_seed("eval-speed", k) for k in range(a.seeds)]
    runs: dict[str, Run] = {}
    floors = []
    for seed in seeds:
        floors.append(floor_seconds_per_epoch(data, s, min(a.epochs, 10), seed))
        for name, q, path in variants:
            if path in ONE_AFTER_ANOTHER:
                runs[name] = runs.get(name, Run(0.0, 0.0, [])) + ours(data, s, a.epochs, [seed], q, path)
        if reference:
            runs["reference"] = runs.get("reference", Run(0.0, 0.0, [])) + reference.run(data, s, a.epochs)
    for name, q, path in variants:
        if path not in ONE_AFTER_ANOTHER:
            runs[name] = ours(data, s, a.epochs, seeds, q, path)
    return runs, statistics.median(floors)


def warm_up(data, variants: list[tuple[str, str, str]]) -> None:
    """One short untimed run of every path (CUDA context, cuDNN plans, allocator pools)."""
    s = random_set(data, 1)
    for _, q, path in variants:
        ours(data, s, 3, [0, 1], q, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="mnist,cifar10")
    p.add_argument("--ipc", default="1,10,50")
    p.add_argument("--seeds", type=int, default=5, help="K networks per variant")
    p.add_argument("--epochs", type=int, default=20, help="training epochs per network (paper: 1000)")
    p.add_argument("--precisions", default="fp32", help="comma list of fp32, bf16")
    p.add_argument("--together", default="auto", choices=SEEDS_TOGETHER,
                   help="also time the K networks as one stacked ensemble (auto: on CUDA)")
    p.add_argument("--cuda-graphs", default="auto", choices=("auto", "off"),
                   help="also time that ensemble with its steps replayed as CUDA graphs (auto: on CUDA)")
    p.add_argument("--reference", type=Path, help="a VICO-UoE/DatasetCondensation checkout (optional)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    print(f"# eval_speed: {device_description(device)}, torch {torch.__version__}, {a.seeds} networks x {a.epochs} "
          f"epochs per variant, {a.threads} thread(s), {datetime.date.today()}", flush=True)
    datasets = {name: load_dataset(name) for name in a.datasets.split(",")}
    datasets = {name: type(d)(d.spec, d.train.to(device), d.test.to(device)) for name, d in datasets.items()}
    precisions = usable_precisions(next(iter(datasets.values())), a.precisions.split(","))
    variants = [(f"ours-{q}", q, "loop") for q in precisions]
    variants += [("whole-fp32", "fp32", "whole")] if device.type == "cpu" else []
    variants += [(f"together-{q}", q, "together") for q in precisions] if together_on(a.together, device) else []
    if a.cuda_graphs == "auto" and device.type == "cuda":
        variants += [(f"graphs-{q}", q, "graphs") for q in precisions]
    warm_up(next(iter(datasets.values())), variants)
    print("# s/epoch and test s are per network; 'K nets s' is the wall time of all K (training + testing); "
          "speed-up = reference K nets s / this K nets s; floor = fwd+bwd+SGD alone", flush=True)
    header = ["dataset", "IPC", "variant", "s/epoch", "test s", "K nets s", "speed-up", "vs floor", "accuracy"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), flush=True)
    for name, data in datasets.items():
        reference = Reference(a.reference.expanduser(), data.spec, device) if a.reference else None
        try:
            for ipc in map(int, a.ipc.split(",")):
                runs, floor = measure(data, random_set(data, ipc), a, variants, reference)
                ref_wall = runs["reference"].wall_seconds if reference else None
                print(f"| {name} | {ipc} | floor | {floor:.4f} | | | | 1.00x | |", flush=True)
                for variant, run in runs.items():
                    per_epoch = run.train_seconds / a.epochs / a.seeds
                    speedup = f"{ref_wall / run.wall_seconds:.2f}x" if ref_wall else ""
                    print(f"| {name} | {ipc} | {variant} | {per_epoch:.4f} | {run.test_seconds / a.seeds:.2f} | "
                          f"{run.wall_seconds:.1f} | {speedup} | {per_epoch / floor:.2f}x | "
                          f"{mean_std(run.accuracies)} |", flush=True)
        finally:
            if reference:
                reference.close()
                sys.path.remove(str(reference.copy))
                sys.modules.pop("utils", None)
                sys.modules.pop("networks", None)


if __name__ == "__main__":
    main()
