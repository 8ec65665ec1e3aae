"""Evaluation speed: our evaluator against the bare-compute floor and the reference evaluation loop.

For each dataset and IPC, K networks (one per seed) are trained for ``--epochs`` epochs on one random real
set under the paper protocol's settings (SGD, batch 256, DSA per batch) and tested on the whole real test
set, side by side in one process, interleaved seed by seed:

* **ours** — :func:`benchmark.evaluate.evaluate` (fp32, and bf16 autocast with ``--precisions fp32,bf16``
  where a first probe shows a bf16 step is no slower than an fp32 one: on CPUs without native bf16 units
  autocast emulates it and is many times slower, which the probe prints);
* **floor** — the same network's forward + backward + SGD step on batches of the same sizes, with no data
  shuffling, no augmentation and no loss bookkeeping: what the arithmetic alone costs;
* **reference** (with ``--reference PATH``, a VICO-UoE/DatasetCondensation checkout the person
  benchmarking fetched; never part of this project) — its ``utils.evaluate_synset`` (DataLoader per epoch,
  ``DiffAugment`` per batch), run from a temporary copy with the two torch-version fixes of
  ``benchmarks/faithfulness.py``, its ``epoch`` wrapped to time training and testing apart.

It prints seconds per training epoch, the test pass, the ratios (reference / ours: speed-up; ours / floor:
overhead) and every variant's accuracy (mean ± std over the K networks), so speed never hides a
regression. Accuracy after a short ``--epochs`` is low; it is there to compare the variants, not the paper.

    python -m benchmarks.eval_speed --datasets mnist --ipc 1,10 --seeds 5 --epochs 20 \
        --reference /path/to/DatasetCondensation
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from benchmark.augment import strategy_for
from benchmark.data import load_dataset
from benchmark.distiller import SyntheticSet
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


def floor_seconds_per_epoch(data, s: SyntheticSet, epochs: int, seed: int, precision: str = "fp32",
                            warmup_epochs: int = 0) -> float:
    """Forward + backward + SGD step on fixed batches of the evaluator's sizes: the arithmetic alone, at
    ``precision``, timed after ``warmup_epochs`` untimed ones."""
    net = build_model("convnet", data.spec, seed=seed, device=s.x.device)
    opt = torch.optim.SGD(net.parameters(), lr=PAPER.lr, momentum=PAPER.momentum, weight_decay=PAPER.weight_decay)
    batches = list(zip(s.x.split(PAPER.batch_size), s.y.split(PAPER.batch_size), strict=True))
    for epoch in range(warmup_epochs + epochs):
        if epoch == warmup_epochs:
            start = time.perf_counter()
        for x, y in batches:
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return (time.perf_counter() - start) / epochs


def usable_precisions(data, precisions: list[str]) -> list[str]:
    """Probe each precision's raw step cost; drop one that is slower than fp32 (no native units), saying so."""
    probe = SyntheticSet(data.train.images_at(torch.arange(32)), data.train.labels[:32])
    cost = {q: floor_seconds_per_epoch(data, probe, 2, 0, q, warmup_epochs=1)
            for q in dict.fromkeys(["fp32", *precisions])}
    for q in precisions:
        print(f"# probe: {q} fwd+bwd step on 32 images: {cost[q]:.3f} s ({cost[q] / cost['fp32']:.2f}x fp32)")
    kept = ["fp32", *(q for q in precisions if q != "fp32" and cost[q] <= cost["fp32"])]
    for q in sorted(set(precisions) - set(kept)):
        print(f"# {q} skipped: slower than fp32 on this device (no native {q} arithmetic), so it cannot be a fast path")
    return kept


def ours(data, s: SyntheticSet, epochs: int, seed: int, precision: str) -> tuple[float, float, float]:
    """(seconds per training epoch, seconds of the test pass, accuracy) of one network."""
    protocol = PAPER.overridden({"epochs": epochs, "models": 1, "precision": precision})
    result = evaluate(s, data.test, data.spec, "convnet", protocol, [seed], s.x.device)
    return result.train_seconds / epochs, result.test_seconds, result.accuracies[0]


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

    def run(self, data, s: SyntheticSet, epochs: int) -> tuple[float, float, float]:
        """One network; the reference trains ``epoch_eval_train + 1`` epochs, so it is given ``epochs - 1``."""
        self.args.epoch_eval_train = epochs - 1
        test = torch.utils.data.TensorDataset(data.test.images_at(torch.arange(len(data.test))), data.test.labels)
        loader = torch.utils.data.DataLoader(test, batch_size=256, shuffle=False, num_workers=0)
        net = self.utils.get_network("ConvNet", self.spec.channels, self.spec.num_classes,
                                     (self.spec.resolution, self.spec.resolution))
        self.clock.update(train=0.0, test=0.0)
        _, _, acc = self.utils.evaluate_synset(0, net, s.x.clone(), s.y.clone(), loader, self.args)
        return self.clock["train"] / epochs, self.clock["test"], 100.0 * acc

    def close(self) -> None:
        shutil.rmtree(self.copy, ignore_errors=True)


def mean_std(values: list[float]) -> str:
    return f"{statistics.fmean(values):.2f} ± {statistics.pstdev(values):.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="mnist,cifar10")
    p.add_argument("--ipc", default="1,10,50")
    p.add_argument("--seeds", type=int, default=5, help="K networks per variant")
    p.add_argument("--epochs", type=int, default=20, help="training epochs per network (paper: 1000)")
    p.add_argument("--precisions", default="fp32", help="comma list of fp32, bf16")
    p.add_argument("--reference", type=Path, help="a VICO-UoE/DatasetCondensation checkout (optional)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    print(f"# eval_speed: {device_description(device)}, torch {torch.__version__}, {a.seeds} networks x {a.epochs} "
          f"epochs per variant, {a.threads} thread(s)", flush=True)
    datasets = {name: load_dataset(name) for name in a.datasets.split(",")}
    datasets = {name: type(d)(d.spec, d.train.to(device), d.test.to(device)) for name, d in datasets.items()}
    precisions = usable_precisions(next(iter(datasets.values())), a.precisions.split(","))
    header = ["dataset", "IPC", "floor s/ep"] + [f"ours-{q} s/ep" for q in precisions] + ["ours test s"]
    header += ["ref s/ep", "ref test s", "ref/ours", "ours/floor"] if a.reference else ["ours/floor"]
    header += [f"acc ours-{q}" for q in precisions] + (["acc ref"] if a.reference else [])
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), flush=True)
    for name, data in datasets.items():
        reference = Reference(a.reference.expanduser(), data.spec, device) if a.reference else None
        try:
            for ipc in map(int, a.ipc.split(",")):
                s = random_set(data, ipc)
                runs: dict[str, list[tuple[float, float, float]]] = {q: [] for q in precisions}
                runs["ref"], floors = [], []
                for k in range(a.seeds):  # interleaved, so a change of machine load hits every variant alike
                    seed = derive_seed("eval-speed", k)
                    floors.append(floor_seconds_per_epoch(data, s, min(a.epochs, 10), seed))
                    for q in precisions:
                        runs[q].append(ours(data, s, a.epochs, seed, q))
                    if reference:
                        runs["ref"].append(reference.run(data, s, a.epochs))
                floor = statistics.median(floors)
                fp = statistics.median(r[0] for r in runs[precisions[0]])
                row = [name, str(ipc), f"{floor:.4f}"] + [f"{statistics.median(r[0] for r in runs[q]):.4f}"
                                                          for q in precisions]
                row.append(f"{statistics.median(r[1] for r in runs[precisions[0]]):.2f}")
                if reference:
                    ref = statistics.median(r[0] for r in runs["ref"])
                    row += [f"{ref:.4f}", f"{statistics.median(r[1] for r in runs['ref']):.2f}", f"{ref / fp:.2f}x"]
                row.append(f"{fp / floor:.2f}x")
                row += [mean_std([r[2] for r in runs[q]]) for q in precisions]
                row += [mean_std([r[2] for r in runs["ref"]])] if reference else []
                print("| " + " | ".join(row) + " |", flush=True)
        finally:
            if reference:
                reference.close()
                sys.path.remove(str(reference.copy))
                sys.modules.pop("utils", None)
                sys.modules.pop("networks", None)


if __name__ == "__main__":
    main()
