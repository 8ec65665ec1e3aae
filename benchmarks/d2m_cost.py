"""Wall time and peak memory of one D2M distillation, generator pre-training included, on this machine.

Runs ``d2m`` once under a budget preset (default ``cpu-small``) with an empty cache, so the pre-training is
paid, and prints the measured wall time, the peak resident memory (:func:`benchmark.costs.measure`), and
the seconds per pre-training and per distillation iteration. ``--pretrain-iterations``/``--iterations``
cap the two loops for a partial run; the full preset's time is then extrapolated from the per-iteration
costs (both loops cost the same every iteration) and printed as such.

    python -m benchmarks.d2m_cost --dataset digits --threads 1
    python -m benchmarks.d2m_cost --dataset mnist --threads 1 --pretrain-iterations 60 --iterations 10
    python -m benchmarks.d2m_cost --dataset cifar10 --budget paper --device cuda --pretrain-iterations 40 \
        --iterations 20 --warmup 5 --json cost.json     # the per-iteration costs benchmarks/d2m_fit.py sizes from
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmark.costs import measure
from benchmark.data import load_dataset
from benchmark.devices import resolve_device
from benchmark.distiller import Budget, DistillTask, get_distiller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--method", default="d2m")
    parser.add_argument("--budget", default="cpu-small")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pretrain-iterations", type=int, default=None, help="cap (partial run, extrapolated)")
    parser.add_argument("--iterations", type=int, default=None, help="cap (partial run, extrapolated)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--json", type=Path, help="also write the measured costs to this file")
    parser.add_argument("--warmup", type=int, default=0, help="iterations of each loop run first, untimed")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    distiller = get_distiller(args.method)
    preset = distiller.resolve_hparams(data.spec, None, args.budget)
    caps = {k: v for k, v in (("pretrain_iterations", args.pretrain_iterations), ("iterations", args.iterations))
            if v is not None}
    hparams = distiller.resolve_hparams(data.spec, None, args.budget, caps)
    device = resolve_device(args.device)

    def run_once(hp: Any, folder: str) -> Any:
        task = DistillTask(train=data.train, spec=data.spec, ipc=None, budget=Budget(args.budget), device=device,
                           seed=0, hparams=hp, work_dir=Path(folder) / "work", cache_dir=Path(folder) / "cache")
        return distiller.distill(task)

    if args.warmup:  # the first steps on a GPU pay for kernel selection and allocator growth: not the loop's rate
        with tempfile.TemporaryDirectory() as tmp:
            run_once(dataclasses.replace(hparams, pretrain_iterations=args.warmup, iterations=args.warmup), tmp)
    with tempfile.TemporaryDirectory() as tmp, measure(device) as cost:
        artifact = run_once(hparams, tmp)
    summary = artifact.summary()
    pretrain, distill = summary["pretrain"], summary.get("distill", {"seconds": 0.0, "iterations": 0})
    per_pretrain = pretrain["seconds"] / max(pretrain["iterations"], 1)
    per_distill = distill["seconds"] / max(distill["iterations"], 1)
    overhead = cost.wall_seconds - pretrain["seconds"] - distill["seconds"]
    full = overhead + per_pretrain * preset.pretrain_iterations + per_distill * preset.iterations
    print(f"{args.method} on {args.dataset}, budget {args.budget}, {device}, {args.threads} thread(s), "
          f"generator {summary['generator_parameters']} parameters")
    print(f"  pre-training: {pretrain['iterations']} iterations in {pretrain['seconds']:.1f} s "
          f"({per_pretrain:.3f} s/iteration)")
    print(f"  distillation: {distill['iterations']} iterations in {distill['seconds']:.1f} s "
          f"({per_distill:.3f} s/iteration); first/last logged loss {distill.get('first_loss')} / "
          f"{distill.get('last_loss')}")
    print(f"  wall {cost.wall_seconds:.1f} s, peak memory {(cost.peak_memory_bytes or 0) / 2**20:.0f} MiB "
          f"({cost.peak_memory_kind})")
    if caps:
        print(f"  full preset ({preset.pretrain_iterations} + {preset.iterations} iterations), extrapolated: "
              f"{full:.0f} s ({per_pretrain * preset.pretrain_iterations:.0f} s of it pre-training)")
    if args.json:
        args.json.write_text(json.dumps({
            "method": args.method, "dataset": args.dataset, "budget": args.budget, "device": str(device),
            "threads": args.threads, "generator_parameters": summary["generator_parameters"],
            "pretrain_s_per_iteration": per_pretrain, "distill_s_per_iteration": per_distill,
            "overhead_s": overhead, "wall_s": cost.wall_seconds, "peak_memory_bytes": cost.peak_memory_bytes,
            "peak_memory_kind": cost.peak_memory_kind, "measured": {"pretrain": pretrain["iterations"],
                                                                    "distill": distill["iterations"]}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
