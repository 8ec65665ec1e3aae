"""Replay check: our ``dc`` / ``dm`` and the reference scripts fed the same random draws, compared image by image.

The side-by-side accuracy check (:mod:`benchmarks.faithfulness`) compares two *distributions* of results,
and at a few seeds it cannot tell a protocol difference from the draw of starting images and networks. This
check removes the draws: our distiller runs ``--iterations`` iterations while every random draw it makes is
recorded (the starting images, the weights of every freshly drawn network, the indices of every real batch);
then the reference script (``main.py --method DC``, ``main_DM.py``) runs unmodified, beyond the two
torch-version fixes of :mod:`benchmarks.faithfulness`, in a subprocess where those draws are injected at the
three places it makes them:

* ``utils.get_network`` builds the reference's network as usual, then loads the recorded weights into it
  (parameters matched in order; shapes checked);
* ``np.random.permutation`` (``get_images`` in both scripts) returns a permutation of the class's indices
  that starts with the recorded batch (each index checked to belong to that class);
* ``torch.randn`` of the synthetic set's shape (``image_syn``) returns the recorded start.

Everything else (loops, losses, optimisers, inner training, BN handling) is the reference's own code. With
the same draws the two final sets must agree up to float rounding; the script prints the largest pixel
difference and the difference relative to how far the images moved (``‖ref − ours‖ / ‖ours − start‖``).

How far "up to float rounding" reaches depends on the run: DC at IPC 10 trains the network 450 SGD steps
inside one iteration, and such training amplifies rounding differences (the same 50 steps in another batch
order, or in fp64, move instance-norm parameters by ~2 % and conv weights by ~1e-4 here). So every row also
runs *ours a second time* from the recorded start nudged by a relative 1e-6 (``--nudge``; every other draw the
same): its distance from our first run is the rounding floor of that row, and a row counts as the same
computation when the reference is no further from ours than :data:`FLOOR_FACTOR` times that floor (or
:data:`AGREE`, whichever is larger).

DSA's augmentation cannot be replayed this way (the reference seeds it from the clock and draws from the
global stream), so DM runs with ``--dsa-strategy none`` on both sides and DSA is not replayed: it is DC's
loop plus the augmentation.

    python -m benchmarks.replay --reference ~/DatasetCondensation --methods dc,dm --ipc 1,10
"""

from __future__ import annotations

import argparse
import runpy
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import benchmark.matching
from benchmark.data import load_dataset
from benchmark.data.images import LabelledImages
from benchmark.data.registry import DataOptions
from benchmark.distiller import Budget, DistillTask, get_distiller
from benchmark.synthetic import PixelMatchingState
from benchmarks.faithfulness import (
    PROJECT_ROOT,
    enter_reference,
    prepare_reference,
    reference_command,
    reference_env,
    the_reference_device,
)

AGREE = 1e-3
"""``‖ref − ours‖ / ‖ours − start‖`` below which a row is the same computation whatever its floor (rounding
measured ~1e-5 after two DC iterations at IPC 1)."""
FLOOR_FACTOR = 4.0
"""How many times our own rounding floor (the nudged rerun) the reference may differ by: both distances are
single draws of the same amplification, so a factor of a few, not one."""


def record_ours(data, method: str, hp, ipc: int, seed: int, device: torch.device, nudge: float = 0.0) -> dict:
    """Run our distiller, keeping every random draw the reference also makes, and the result; ``nudge``
    multiplies the starting images by (1 + nudge·ε), ε standard normal, to measure the rounding floor."""
    draws: dict = {"networks": [], "batches": []}
    build, sample = benchmark.matching.build_model, LabelledImages.sample_indices_of_class
    init = PixelMatchingState.__init__

    def recorded_build(*args, **kwargs):
        net = build(*args, **kwargs)
        draws["networks"].append({k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
        return net

    def recorded_sample(self, c, n, generator):
        idx = sample(self, c, n, generator)
        draws["batches"].append((int(c), idx.cpu().tolist()))
        return idx

    def recorded_init(self, task):
        init(self, task)
        if nudge:
            with torch.no_grad():
                eps = torch.randn(self.images.shape, generator=torch.Generator().manual_seed(seed))
                self.images.mul_(1 + nudge * eps.to(self.images.device))
        draws["start"] = self.images.detach().cpu().clone()

    benchmark.matching.build_model, LabelledImages.sample_indices_of_class = recorded_build, recorded_sample
    PixelMatchingState.__init__ = recorded_init
    try:
        with tempfile.TemporaryDirectory(prefix="replay-") as work:
            task = DistillTask(train=data.train, spec=data.spec, ipc=ipc, budget=Budget("paper"), device=device,
                               seed=seed, hparams=hp, work_dir=Path(work) / "w", cache_dir=Path(work) / "c")
            draws["ours"] = get_distiller(method).distill(task).synthesize(ipc, seed).x.cpu()
    finally:
        benchmark.matching.build_model, LabelledImages.sample_indices_of_class = build, sample
        PixelMatchingState.__init__ = init
    return draws


def replay_driver(copy: str, script: str, draws_file: str, threads: str, *argv: str) -> None:
    """Run one reference script in this process with the recorded draws injected (see the module doc)."""
    enter_reference(copy, threads)
    import utils  # the reference's module, from the patched copy

    draws = torch.load(draws_file, weights_only=True)
    networks, batches, start = list(draws["networks"]), list(draws["batches"]), draws["start"]
    get_network, permutation, randn = utils.get_network, np.random.permutation, torch.randn

    def replayed_network(*args, **kwargs):
        net = get_network(*args, **kwargs)
        if not networks:
            raise SystemExit("replay: the reference drew more networks than ours did")
        recorded = networks.pop(0)
        with torch.no_grad():
            for (name, p), v in zip(net.state_dict().items(), recorded.values(), strict=True):
                if p.shape != v.shape:
                    raise SystemExit(f"replay: network parameter {name} is {tuple(p.shape)}, recorded {tuple(v.shape)}")
                p.copy_(v)
        return net

    def replayed_permutation(x):
        if not (isinstance(x, list) and x and isinstance(x[0], int)):  # not a class's index list
            return permutation(x)
        if not batches:
            raise SystemExit("replay: the reference drew more real batches than ours did")
        c, idx = batches.pop(0)
        chosen = set(idx)
        if not chosen <= set(x):
            raise SystemExit(f"replay: a recorded batch of class {c} holds indices outside the reference's class")
        return np.array(idx + [i for i in x if i not in chosen])

    def replayed_randn(*args, **kwargs):
        size = kwargs.get("size", args[0] if args else None)
        if size is not None and tuple(size) == tuple(start.shape):
            return start.clone().to(kwargs.get("device") or "cpu").requires_grad_(kwargs.get("requires_grad", False))
        return randn(*args, **kwargs)

    utils.get_network, np.random.permutation, torch.randn = replayed_network, replayed_permutation, replayed_randn
    sys.argv = [script, *argv]
    runpy.run_path(script, run_name="__main__")
    if networks or batches:
        raise SystemExit(f"replay: the reference left {len(networks)} networks and {len(batches)} batches unused")


def run_reference(copy: Path, method: str, hp, ipc: int, iterations: int, draws: dict, threads: int) -> torch.Tensor:
    save = copy / "results" / f"replay-{method}-ipc{ipc}"
    save.mkdir(parents=True, exist_ok=True)
    draws_file = save / "draws.pt"
    torch.save({k: draws[k] for k in ("networks", "batches", "start")}, draws_file)
    script, argv = reference_command(method, hp, ipc, iterations, 1, save)
    done = subprocess.run([sys.executable, "-m", "benchmarks.replay", "replay-driver", str(copy), script,
                           str(draws_file), str(threads), *argv], cwd=PROJECT_ROOT, env=reference_env(threads),
                          capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"the reference replay failed (exit {done.returncode}):\n{done.stdout[-2000:]}"
                         f"{done.stderr[-2000:]}")
    [saved] = list(save.glob("res_*.pt"))
    return torch.load(saved, map_location="cpu", weights_only=True)["data"][0][0]


def compare(ours: torch.Tensor, reference: torch.Tensor, start: torch.Tensor) -> dict:
    move, diff = ours - start, reference - ours
    moved = move.norm()
    return {"max_abs": float(diff.abs().max()), "moved": float(moved), "relative": float(diff.norm() / moved),
            "cos": float(torch.nn.functional.cosine_similarity(move.flatten(), (reference - start).flatten(), dim=0))}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "replay-driver":
        replay_driver(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="a VICO-UoE/DatasetCondensation checkout")
    parser.add_argument("--npz", type=Path, required=True, help="MNIST as .npz")
    parser.add_argument("--methods", default="dc,dm", help="dc and/or dm")
    parser.add_argument("--ipc", default="1,10")
    parser.add_argument("--iterations", type=int, default=2, help="iterations per run (DC at IPC 10: ~15 min each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nudge", type=float, default=1e-6, help="relative nudge of the start for the floor run")
    args = parser.parse_args()
    methods = args.methods.split(",")
    if not set(methods) <= {"dc", "dm"} or args.iterations < 1:
        raise SystemExit(f"--methods {args.methods} / --iterations {args.iterations}: methods from dc, dm; "
                         "iterations >= 1")
    if not args.npz.is_file():
        raise SystemExit(f"--npz {args.npz}: not a file")
    torch.set_num_threads(args.threads)
    device = the_reference_device()
    copy = prepare_reference(args.reference.expanduser(), args.npz)
    try:
        data = load_dataset("mnist", DataOptions(data_root=copy / "data", device=str(device)))
        print(f"MNIST, seed {args.seed}, {args.iterations} iteration(s), {args.threads} thread(s), device {device}")
        print("| method | IPC | iterations | ‖ours − start‖ | max |ref − ours| | ‖ref − ours‖ / ‖ours − start‖ "
              "| floor: ours nudged | cos(moves) | same |\n|---|---|---|---|---|---|---|---|---|")
        for method in methods:
            for ipc in map(int, args.ipc.split(",")):
                overrides = {"iterations": args.iterations, **({"dsa_strategy": "none"} if method == "dm" else {})}
                hp = get_distiller(method).resolve_hparams(data.spec, ipc, "paper", overrides)
                draws = record_ours(data, method, hp, ipc, args.seed, device)
                floor = compare(record_ours(data, method, hp, ipc, args.seed, device, args.nudge)["ours"],
                                draws["ours"], draws["start"])["relative"]
                reference = run_reference(copy, method, hp, ipc, args.iterations, draws, args.threads)
                r = compare(draws["ours"], reference, draws["start"])
                same = r["relative"] <= max(AGREE, FLOOR_FACTOR * floor)
                print(f"| {method} | {ipc} | {args.iterations} | {r['moved']:.4g} | {r['max_abs']:.3g} | "
                      f"{r['relative']:.3g} | {floor:.3g} | {r['cos']:.6f} | {'yes' if same else 'NO'} |", flush=True)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    main()
