"""Faithfulness check: ``dc``, ``dsa`` and ``dm`` against VICO-UoE/DatasetCondensation, side by side.

For each method and IPC, the reference script (``main.py --method DC|DSA``, ``main_DM.py``) and ours
distil MNIST from the same files with the same hyper-parameters and iteration budget; every synthetic set
of both is then evaluated by the same protocol (this project's evaluator, a named reduced protocol), and
the script prints accuracy (mean ± std over sets × evaluation networks) and seconds per iteration of
both. The issue's criterion: accuracies agree within the combined standard deviation (or 1.5 points).

The reference is read from a checkout the user fetched (``--reference PATH``); its Python files are copied
to a temporary folder outside the project and two torch-version fixes are applied there at run time,
changing no computation (``shared/notes/reference-runs.md``):

1. ``networks.py``: ``out.view(out.size(0), -1)`` → ``out.reshape(...)``: DSA's crop leaves 1-channel
   batches in channels-last strides, which modern torch's ``view`` refuses;
2. ``utils.py``: the siamese ``X[:] = X[0]`` → ``X[:] = X[0].clone()``: modern torch refuses the
   overlapping in-place copy for a batch of one image (IPC 1; upstream issue #20).

Budgets: the reference loop ``for it in range(Iteration + 1)`` makes Iteration+1 image updates, so it is
run with ``--Iteration N-1`` for our N. It evaluates nothing itself (``--eval_mode X --num_eval 0``); its
seeds are the clock (``get_network``), so its ``--num_exp S`` experiments play our S seeds. Seconds per
iteration are the gaps between the ends of consecutive iterations (an iteration ends with its last step of
the image optimizer, found with a global optimizer hook in both processes), so data loading and set-up are
excluded on both sides; both wall and process CPU seconds are reported, the latter being the fair measure
on a machine shared with other jobs.

Every finished comparison (one method at one IPC) is kept in ``--out``, so a killed run resumes, and
methods may run in separate processes and be tabulated together by a last invocation naming them all.

    python -m benchmarks.faithfulness --reference ~/DatasetCondensation --out /tmp/faithfulness
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import resource
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from benchmark.data import load_dataset
from benchmark.data.images import InMemoryImages
from benchmark.data.registry import DataOptions
from benchmark.data.shared_npz import find_shared_npz
from benchmark.distiller import Budget, DistillTask, SyntheticSet, get_distiller
from benchmark.evaluate import evaluate
from benchmark.protocol import EvalProtocol
from benchmark.seeding import derive_seed

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PATCHES = (  # (file, pattern, replacement, expected count)
    ("networks.py", r"out\.view\(out\.size\(0\), -1\)", "out.reshape(out.size(0), -1)", None),
    ("utils.py", r"(\w+)\[:\] = \1\[0\]$", r"\1[:] = \1[0].clone()", 10),
)
DEFAULT_ITERATIONS = {("dc", 1): 20, ("dc", 10): 2, ("dsa", 1): 20, ("dsa", 10): 2, ("dm", 1): 50, ("dm", 10): 50}
"""Outer iterations per (method, IPC): DC/DSA at IPC 10 cost ~5 min per iteration on one CPU core."""


def reference_command(method: str, hp, ipc: int, iterations: int, seeds: int, save: Path) -> tuple[str, list[str]]:
    """The reference script and arguments that run our resolved hyper-parameters ``hp``."""
    common = ["--dataset", "MNIST", "--model", "ConvNet", "--ipc", str(ipc), "--init", hp.init,
              "--lr_img", str(hp.lr_img), "--batch_real", str(hp.batch_real), "--Iteration", str(iterations - 1),
              "--eval_mode", "X", "--num_exp", str(seeds), "--num_eval", "0", "--data_path", "data",
              "--save_path", str(save)]
    if method == "dm":
        return "main_DM.py", [*common, "--dsa_strategy", hp.dsa_strategy]
    strategy = ["--dsa_strategy", hp.dsa_strategy] if method == "dsa" else []
    return "main.py", [*common, "--method", method.upper(), "--lr_net", str(hp.lr_net),
                       "--batch_train", str(hp.batch_train), *strategy]


def patched_copy(source: Path) -> Path:
    """A temporary copy of the reference's Python files with the two torch-version fixes applied."""
    if not (source / "main.py").is_file() or not (source / "main_DM.py").is_file():
        raise SystemExit(f"--reference {source}: not a VICO-UoE/DatasetCondensation checkout (no main.py)")
    copy = Path(tempfile.mkdtemp(prefix="dc-reference-"))
    try:
        for path in source.glob("*.py"):
            shutil.copy(path, copy / path.name)
        for name, pattern, replacement, expected in PATCHES:
            text, count = re.subn(pattern, replacement, (copy / name).read_text(), flags=re.MULTILINE)
            if count == 0 or (expected is not None and count != expected):
                raise SystemExit(f"reference {name}: patch {pattern!r} applied {count} times; the checkout differs "
                                 "from commit 53f63a6 this check was written for")
            (copy / name).write_text(text)
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        raise
    return copy


def prepare_reference(source: Path, npz: Path) -> Path:
    """A patched temporary copy of the reference with MNIST in its IDX layout under ``data/``."""
    copy = patched_copy(source)
    try:
        write_mnist_idx(npz, copy / "data" / "MNIST" / "raw")
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        raise
    return copy


def write_mnist_idx(npz: Path, raw: Path) -> None:
    """The four uncompressed IDX files torchvision's MNIST class reads (big-endian headers 0x803 / 0x801)."""
    raw.mkdir(parents=True)
    with np.load(npz) as data:
        for split, prefix in (("train", "train"), ("test", "t10k")):
            x, y = data[f"x_{split}"].astype(np.uint8), data[f"y_{split}"].astype(np.uint8)
            header = np.array([0x803, *x.shape], dtype=">u4").tobytes()
            (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + x.tobytes())
            (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(np.array([0x801, len(y)], ">u4").tobytes() + y.tobytes())


def image_step_recorder(stamps: list[tuple[float, float]]):
    """Record (wall, process CPU) time at every step of an optimizer over one 4-D tensor: the synthetic
    images. CPU time keeps the comparison fair on a machine shared with other jobs."""

    def hook(optimizer, args, kwargs) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if len(params) == 1 and params[0].ndim == 4:
            stamps.append((time.perf_counter(), time.process_time()))

    return register_optimizer_step_post_hook(hook)


def reference_env(threads: int) -> dict[str, str]:
    """The environment of a reference subprocess: ``threads`` threads, warnings muted."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}


def enter_reference(copy: str, threads: str) -> None:
    """Make this (driver) process run as the reference does: ``threads`` threads, the copy as working directory
    and as the root its scripts import their ``utils``/``networks`` from."""
    torch.set_num_threads(int(threads))
    os.chdir(copy)
    sys.path.insert(0, copy)


def reference_driver(copy: str, script: str, stamps_file: str, threads: str, *argv: str) -> None:
    """Run one reference script unmodified (beyond the patches) in this process, timing its image steps."""
    enter_reference(copy, threads)
    stamps: list[tuple[float, float]] = []
    image_step_recorder(stamps)
    sys.argv = [script, *argv]
    runpy.run_path(script, run_name="__main__")
    Path(stamps_file).write_text(json.dumps({"stamps": stamps, "peak_rss_bytes": peak_rss_bytes(),
                                             "peak_cuda_bytes": peak_cuda_bytes()}))


def the_reference_device() -> torch.device:
    """Where the reference scripts run (their ``args.device``): CUDA when available, else the CPU; our side
    follows it so both run on the same device."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def peak_rss_bytes() -> int:
    """This process's lifetime resident-memory high-water mark (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_cuda_bytes() -> int:
    """The most GPU memory this process's tensors held at once (0 without CUDA)."""
    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0


def image_steps_per_iteration(hp) -> int:
    """Image-optimizer steps in one iteration: DC/DSA update the images ``outer_loop`` times per iteration,
    DM (and D2M's generator) once."""
    return getattr(hp, "outer_loop", 1)


def gaps_per_iteration(stamps: list[float], runs: int, iterations: int, steps_per_iteration: int) -> list[float]:
    """Seconds between the ends of consecutive iterations within each run (an iteration ends with its last
    image step; DC/DSA make ``outer_loop`` steps per iteration)."""
    per_run = iterations * steps_per_iteration
    if len(stamps) != runs * per_run:
        raise SystemExit(f"expected {runs * per_run} image-optimizer steps, recorded {len(stamps)}")
    gaps = []
    for r in range(runs):
        ends = stamps[r * per_run + steps_per_iteration - 1 : (r + 1) * per_run : steps_per_iteration]
        gaps += [b - a for a, b in zip(ends, ends[1:], strict=False)]
    return gaps


def iteration_seconds(stamps: list, runs: int, iterations: int, steps_per_iteration: int) -> dict[str, list[float]]:
    """Wall and CPU seconds of every timed iteration."""
    return {clock: gaps_per_iteration([s[k] for s in stamps], runs, iterations, steps_per_iteration)
            for k, clock in enumerate(("wall", "cpu"))}


def run_reference(copy: Path, method: str, hp, ipc: int, iterations: int, seeds: int, threads: int,
                  out: Path) -> dict:
    save = copy / "results" / f"{method}-ipc{ipc}"
    save.mkdir(parents=True, exist_ok=True)
    script, argv = reference_command(method, hp, ipc, iterations, seeds, save)
    stamps_file = save / "stamps.json"
    print(f"reference: python {script} {' '.join(argv)}", flush=True)
    log = out / f"reference-{method}-ipc{ipc}.log"
    with open(log, "w") as fh:
        done = subprocess.run([sys.executable, "-m", "benchmarks.faithfulness", "reference-driver", str(copy), script,
                               str(stamps_file), str(threads), *argv], cwd=PROJECT_ROOT, env=reference_env(threads),
                              stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"the reference run failed (exit {done.returncode}); see {log}")
    result = torch.load(next(save.glob("res_*.pt")), map_location="cpu", weights_only=True)
    recorded = json.loads(stamps_file.read_text())
    return {"sets": [(x, y) for x, y in result["data"]], "peak_rss_bytes": recorded["peak_rss_bytes"],
            "peak_cuda_bytes": recorded["peak_cuda_bytes"],
            "stamps": recorded["stamps"],
            "seconds": iteration_seconds(recorded["stamps"], seeds, iterations,
                                         image_steps_per_iteration(hp))}


def run_ours(data, method: str, hp, ipc: int, iterations: int, seeds: range, device: torch.device) -> dict:
    sets, stamps = [], []
    handle = image_step_recorder(stamps)
    try:
        for seed in seeds:
            with tempfile.TemporaryDirectory(prefix="faithfulness-") as work:
                task = DistillTask(train=data.train, spec=data.spec, ipc=ipc, budget=Budget("paper"), device=device,
                                   seed=seed, hparams=hp, work_dir=Path(work) / "w", cache_dir=Path(work) / "c")
                s = get_distiller(method).distill(task).synthesize(ipc, seed)
            sets.append((s.x.cpu(), s.y.cpu()))
    finally:
        handle.remove()
    return {"sets": sets, "seconds": iteration_seconds(stamps, len(seeds), iterations,
                                                       image_steps_per_iteration(hp))}


def summarise(accuracies: list[float], seconds: dict[str, list[float]]) -> dict:
    """Accuracy mean ± population std (as the reference prints them) and median seconds per iteration."""
    t = torch.tensor(accuracies)
    medians = {clock: statistics.median(v) if v else float("nan") for clock, v in seconds.items()}
    return {"accuracies": accuracies, "mean": float(t.mean()), "std": float(t.std(unbiased=False)),
            "wall_s_per_it": medians["wall"], "cpu_s_per_it": medians["cpu"], "seconds": seconds}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "reference-driver":
        reference_driver(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="a VICO-UoE/DatasetCondensation checkout")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "work" / "faithfulness")
    parser.add_argument("--npz", type=Path, default=find_shared_npz("mnist"), help="MNIST as .npz")
    parser.add_argument("--methods", default="dc,dsa,dm")
    parser.add_argument("--ipc", default="1,10")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="our first distillation seed (seeds FIRST..FIRST+SEEDS-1; evaluation seeds follow), so a "
                        "second run adds new sets to an earlier one's instead of repeating them")
    defaults = ", ".join(f"{m}:{i}={n}" for (m, i), n in DEFAULT_ITERATIONS.items())
    parser.add_argument("--iterations", nargs="*", default=[], metavar="METHOD:IPC=N",
                        help=f"iteration budgets; METHOD may be 'all', ':IPC' may be left out (default {defaults})")
    parser.add_argument("--eval-epochs", type=int, default=300)
    parser.add_argument("--eval-models", type=int, default=1, help="evaluation networks per synthetic set")
    parser.add_argument("--test-limit", type=int, default=None, help="test on the first N test images only")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.first_seed < 0 or args.seeds < 1:
        raise SystemExit(f"--first-seed {args.first_seed} / --seeds {args.seeds}: "
                         "need --first-seed >= 0 and --seeds >= 1")
    if args.npz is None or not args.npz.is_file():
        raise SystemExit("MNIST .npz not found: pass --npz PATH")
    budgets = dict(DEFAULT_ITERATIONS)
    for item in args.iterations:
        key, _, n = item.partition("=")
        method, _, ipc = key.partition(":")
        for m in ([method] if method != "all" else ["dc", "dsa", "dm"]):
            for i in ([int(ipc)] if ipc else [1, 10]):
                budgets[(m, i)] = int(n)
    torch.set_num_threads(args.threads)
    device = the_reference_device()
    protocol = EvalProtocol(name=f"faithfulness-{args.eval_epochs}ep", epochs=args.eval_epochs,
                            models=args.eval_models, description=f"REDUCED: {args.eval_epochs} epochs, "
                            f"{args.eval_models} networks per set, else the paper protocol")
    args.out.mkdir(parents=True, exist_ok=True)
    copy = prepare_reference(args.reference.expanduser(), args.npz)
    try:
        data = load_dataset("mnist", DataOptions(data_root=copy / "data", device=str(device)))
        test = data.test
        if args.test_limit:
            test = InMemoryImages(test.pixels[: args.test_limit], test.labels[: args.test_limit], data.spec)
        rows = []
        for method in args.methods.split(","):
            for ipc in map(int, args.ipc.split(",")):
                rows.append(compare(copy, data, test, method, ipc, budgets[(method, ipc)], args, protocol, device))
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    report(rows, protocol, args, device)


def compare(copy: Path, data, test, method: str, ipc: int, iterations: int, args, protocol: EvalProtocol,
            device: torch.device) -> dict:
    """Distil with both implementations (or reuse what ``--out`` holds), evaluate every set, summarise."""
    hp = get_distiller(method).resolve_hparams(data.spec, ipc, "paper", {"iterations": iterations})
    name = f"{method}-ipc{ipc}-it{iterations}-s{args.seeds}" + (f"-from{args.first_seed}" if args.first_seed else "")
    done = args.out / f"row-{name}-{protocol.name}-m{protocol.models}-t{args.test_limit or 'all'}.json"
    if done.is_file():
        return json.loads(done.read_text())
    ours_seeds = range(args.first_seed, args.first_seed + args.seeds)
    row: dict = {"method": method, "ipc": ipc, "iterations": iterations, "hparams": dataclasses.asdict(hp)}
    for side in ("reference", "ours"):
        cache = args.out / f"{side}-{name}.pt"
        if cache.is_file():
            run = torch.load(cache, weights_only=True)
        else:
            run = (run_reference(copy, method, hp, ipc, iterations, args.seeds, args.threads, args.out)
                   if side == "reference"
                   else run_ours(data, method, hp, ipc, iterations, ours_seeds, device))
            torch.save(run, cache)
        accuracies = []
        for k, (x, y) in enumerate(run["sets"], start=args.first_seed):
            seeds = [derive_seed("faithfulness", method, ipc, k, m) for m in range(protocol.models)]
            result = evaluate(SyntheticSet(x.to(device), y.to(device)), test, data.spec, "convnet", protocol, seeds,
                              device)
            accuracies += result.accuracies
        row[side] = summarise(accuracies, run["seconds"])
        print(f"{side:9s} {method} ipc {ipc}: {row[side]['mean']:.2f} ± {row[side]['std']:.2f} "
              f"({row[side]['wall_s_per_it']:.2f} s, {row[side]['cpu_s_per_it']:.2f} CPU s per iteration)", flush=True)
    done.write_text(json.dumps(row))
    return row


def report(rows: list[dict], protocol: EvalProtocol, args, device: torch.device) -> None:
    print(f"\nMNIST, {args.seeds} seed(s) per side, protocol {protocol.name} ({protocol.description}), "
          f"{args.test_limit or 'all'} test images, {args.threads} thread(s), device {device}")
    header = ("| method | IPC | iterations | reference acc | ours acc | difference | allowed | wall s/it ref. "
              "| wall s/it ours | speed-up | CPU s/it ref. | CPU s/it ours | CPU speed-up |")
    print(header + "\n|" + "---|" * (header.count("|") - 1))
    for row in rows:
        ref, ours = row["reference"], row["ours"]
        diff = abs(ref["mean"] - ours["mean"])
        allowed = max(math.hypot(ref["std"], ours["std"]), 1.5)
        row.update(diff=diff, allowed=allowed, agree=diff <= allowed,
                   speedup=ref["wall_s_per_it"] / ours["wall_s_per_it"],
                   cpu_speedup=ref["cpu_s_per_it"] / ours["cpu_s_per_it"])
        print(f"| {row['method']} | {row['ipc']} | {row['iterations']} | {ref['mean']:.2f} ± {ref['std']:.2f} | "
              f"{ours['mean']:.2f} ± {ours['std']:.2f} | {diff:.2f} | {allowed:.2f}{'' if row['agree'] else ' FAIL'} | "
              f"{ref['wall_s_per_it']:.2f} | {ours['wall_s_per_it']:.2f} | {row['speedup']:.2f}x | "
              f"{ref['cpu_s_per_it']:.2f} | {ours['cpu_s_per_it']:.2f} | {row['cpu_speedup']:.2f}x |")
    summary = args.out / "faithfulness.json"
    summary.write_text(json.dumps({"protocol": protocol.as_record(), "seeds": args.seeds, "first_seed": args.first_seed,
                                   "device": str(device),
                                   "threads": args.threads, "test_limit": args.test_limit, "rows": rows}, indent=1))
    print(f"\nwritten: {summary}")


if __name__ == "__main__":
    main()
