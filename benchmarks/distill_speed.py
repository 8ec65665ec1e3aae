"""Distillation speed: seconds per iteration and peak memory of our ``dm``, ``dc``, ``dsa`` and ``d2m`` against the
reference ``main_DM.py`` / ``main.py --method DC|DSA`` of VICO-UoE/DatasetCondensation, side by side.

Every side runs in its own child process (so its memory peaks are its own) on MNIST from the same files, with
the same resolved hyper-parameters (the ``paper`` budget, capped to ``--iterations``), one thread count for
all, one after the other, on the device the reference scripts pick (CUDA when there is one; so do we). The
speed-up is over process CPU time on a CPU (fair on a shared machine) and over wall time on CUDA (where the
host's CPU time says nothing about the device's work); on CUDA both sides synchronise once per iteration (they
read the loss), so the gaps between steps are the device's time per iteration. The clock is the one of
``benchmarks/faithfulness.py``: a global optimizer hook stamps every step of the image optimizer (wall and
process CPU time), so data loading and set-up are excluded on both sides. The unit:

* ``dm``: one iteration = one image step (all classes);
* ``dc`` and ``dsa``: one outer-loop step (matching on every class + the inner network training) is the gap between
  consecutive image steps; an iteration is ``outer_loop`` of them, so the table shows median gap ×
  ``outer_loop`` — this lets IPC 10 (10 outer steps, ~minutes per iteration here) be timed in one iteration;
* ``d2m``: one iteration = one generator step (embedding + prediction matching on every class), after a
  one-iteration generator pre-training whose cost is excluded; there is no reference script for it.

Our ``dm`` is timed once per ``--compile`` choice (``off``: the eager channels-last forward; ``on``: the
compiled one, :mod:`benchmark.fast_embedding`), beside one reference run; the compilation falls before the
first step, so it is outside the per-iteration clock and shown instead in "first step s" (set-up, compilation
and the first iteration, wall).

This machine's speed drifts by ±15 % over minutes even when idle, so ``--rounds N`` runs every side N times,
interleaved (reference, then ours, N times): the table shows medians, and the speed-up as the median of the
rounds' own ratios with all of them beside it.

The reference needs a checkout the person benchmarking fetched (``--reference PATH``, never part of this
project); without it only our side is measured. Accuracy is not measured here (a few iterations say
nothing about it): ``benchmarks/faithfulness.py`` compares the accuracy of the same loops.

    python -m benchmarks.distill_speed --reference /path/to/DatasetCondensation --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from benchmark.data import DataOptions, dataset_spec, load_dataset
from benchmark.data.shared_npz import find_shared_npz
from benchmark.distiller import Budget, DistillTask, get_distiller
from benchmark.fast_embedding import COMPILE
from benchmark.provenance import device_description
from benchmarks.faithfulness import (
    PROJECT_ROOT,
    image_step_recorder,
    image_steps_per_iteration,
    peak_cuda_bytes,
    peak_rss_bytes,
    prepare_reference,
    run_reference,
    the_reference_device,
)

DEFAULT_ITERATIONS = {("dm", 1): 8, ("dm", 10): 8, ("dc", 1): 6, ("dc", 10): 1, ("dsa", 1): 6, ("dsa", 10): 1,
                      ("d2m", 1): 8, ("d2m", 10): 8}
"""Iterations per (method, IPC): enough gaps for a median; DC/DSA at IPC 10 are timed per outer-loop step."""


def resolved_hparams(method: str, spec, ipc: int, iterations: int):
    caps = {"iterations": iterations} | ({"pretrain_iterations": 1} if method == "d2m" else {})
    return get_distiller(method).resolve_hparams(spec, ipc, "paper", caps)


def all_step_recorder(stamps: list[tuple[float, float]]):
    """Stamp every optimizer step: D2M's generator steps are the last ``iterations`` of them."""
    return register_optimizer_step_post_hook(lambda *_: stamps.append((time.perf_counter(), time.process_time())))


def ours_driver(method: str, ipc: str, iterations: str, threads: str, compile_choice: str, out: str) -> None:
    """Child process: one distillation of ours; writes the step stamps, the wall seconds from the start of
    the distillation to its first step (set-up, compilation and one iteration) and the peak memory."""
    torch.set_num_threads(int(threads))
    device = the_reference_device()
    data = load_dataset("mnist", DataOptions(device=str(device)))
    hp = resolved_hparams(method, data.spec, int(ipc), int(iterations))
    stamps: list[tuple[float, float]] = []
    handle = (all_step_recorder if method == "d2m" else image_step_recorder)(stamps)
    with tempfile.TemporaryDirectory(prefix="distill-speed-") as work:
        task = DistillTask(train=data.train, spec=data.spec, ipc=int(ipc), budget=Budget("paper"),
                           device=device, seed=0, hparams=hp, work_dir=Path(work) / "w",
                           cache_dir=Path(work) / "c", compile=compile_choice)
        start = time.perf_counter()
        get_distiller(method).distill(task)
    handle.remove()
    if method == "d2m":
        stamps = stamps[-int(iterations):]
    Path(out).write_text(json.dumps({"stamps": stamps, "first_step_s": stamps[0][0] - start if stamps else None,
                                     "peak_rss_bytes": peak_rss_bytes(),
                                     "peak_cuda_bytes": peak_cuda_bytes()}))


def peak_mib(run: dict, device: torch.device) -> str:
    key = "peak_cuda_bytes" if device.type == "cuda" else "peak_rss_bytes"
    return f"{run[key] / 2**20:.0f}"


def run_ours(method: str, ipc: int, iterations: int, threads: int, compile_choice: str, out: Path) -> dict:
    result = out / f"ours-{method}-ipc{ipc}-compile-{compile_choice}.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-m", "benchmarks.distill_speed", "ours-driver", method, str(ipc),
                           str(iterations), str(threads), compile_choice, str(result)], cwd=PROJECT_ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"our {method} at IPC {ipc} failed (exit {done.returncode})")
    return json.loads(result.read_text())


def seconds_per_iteration(stamps: list, per_iteration: int) -> tuple[float, float]:
    """(wall, CPU) median gap between consecutive stamps, times the stamps per iteration."""
    if len(stamps) < 2:
        raise SystemExit(f"only {len(stamps)} step(s) recorded: raise --iterations")
    medians = []
    for k in (0, 1):
        medians.append(statistics.median(b[k] - a[k] for a, b in zip(stamps, stamps[1:], strict=False)))
    return medians[0] * per_iteration, medians[1] * per_iteration


def timed(run: dict, hp) -> dict:
    """One side's run, reduced to its median (wall, CPU) seconds per iteration and what else the table shows."""
    return {**run, "per_it": seconds_per_iteration(run["stamps"], image_steps_per_iteration(hp))}


def table_row(cells: list[str], ours: list[dict], refs: list[dict], with_reference: bool,
              device: torch.device) -> str:
    """Medians over the rounds; the speed-up is the median of the rounds' own ratios, their range beside it."""
    clock = 0 if device.type == "cuda" else 1
    wall, cpu = (statistics.median(run["per_it"][k] for run in ours) for k in (0, 1))
    first = statistics.median(run["first_step_s"] for run in ours)
    cells += [f"{wall:.3f}", f"{cpu:.3f}", f"{first:.1f}", peak_mib(ours[-1], device)]
    if refs:
        ratios = sorted(ref["per_it"][clock] / mine["per_it"][clock] for ref, mine in zip(refs, ours, strict=True))
        ref_wall, ref_cpu = (statistics.median(run["per_it"][k] for run in refs) for k in (0, 1))
        cells += [f"{ref_wall:.3f}", f"{ref_cpu:.3f}", peak_mib(refs[-1], device),
                  f"{statistics.median(ratios):.2f}x", " ".join(f"{r:.2f}" for r in ratios)]
    elif with_reference:
        cells += ["(none)"] * 5
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "ours-driver":
        ours_driver(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, help="a VICO-UoE/DatasetCondensation checkout (optional)")
    parser.add_argument("--npz", type=Path, default=find_shared_npz("mnist"), help="MNIST as .npz")
    parser.add_argument("--methods", default="dm,dc,d2m")
    parser.add_argument("--ipc", default="1,10")
    parser.add_argument("--iterations", type=int, default=None, help="override every default budget")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every side this many times, interleaved; medians and per-round ratios (default: 1)")
    parser.add_argument("--compile", default="off,on",
                        help="DM's compile choices to time, one row each (benchmark.fast_embedding; default: off,on)")
    args = parser.parse_args()
    if args.rounds < 1:
        raise SystemExit(f"--rounds {args.rounds}: need at least 1")
    if not set(args.compile.split(",")) <= set(COMPILE):
        raise SystemExit(f"--compile {args.compile}: a comma list of {', '.join(COMPILE)}")
    if args.npz is None or not args.npz.is_file():
        raise SystemExit("MNIST .npz not found: pass --npz PATH")
    spec = dataset_spec("mnist")
    out = Path(tempfile.mkdtemp(prefix="distill-speed-out-"))
    copy = prepare_reference(args.reference.expanduser(), args.npz) if args.reference else None
    device = the_reference_device()
    clock = "wall" if device.type == "cuda" else "CPU"
    memory = "GPU" if device.type == "cuda" else "RSS"
    print(f"# distill_speed: MNIST, {device_description(device)}, torch {torch.__version__}, "
          f"{args.threads} thread(s) per process, one process at a time")
    header = ["method", "IPC", "iterations", "compile", "ours s/it (wall)", "ours s/it (CPU)",
              "ours first step s (wall)", f"ours peak {memory} MiB"]
    header += ["ref s/it (wall)", "ref s/it (CPU)", f"ref peak {memory} MiB", f"speed-up ({clock})",
               "speed-up per round"] if copy else []
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    try:
        for method in args.methods.split(","):
            for ipc in map(int, args.ipc.split(",")):
                iterations = args.iterations or DEFAULT_ITERATIONS[(method, ipc)]
                hp = resolved_hparams(method, spec, ipc, iterations)
                choices = args.compile.split(",") if method == "dm" else ["off"]
                refs, ours = [], {choice: [] for choice in choices}
                for _ in range(args.rounds):  # interleaved, so a slow spell of the machine hits both sides
                    if copy and method != "d2m":
                        refs.append(timed(run_reference(copy, method, hp, ipc, iterations, 1, args.threads, out), hp))
                    for choice in choices:
                        ours[choice].append(timed(run_ours(method, ipc, iterations, args.threads, choice, out), hp))
                for choice in choices:
                    rows.append(table_row([method, str(ipc), str(iterations), choice if method == "dm" else "-"],
                                          ours[choice], refs, bool(copy), device))
                    print(rows[-1], flush=True)
    finally:
        if copy:
            shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
