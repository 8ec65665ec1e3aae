"""Size a D2M grid to a time budget: iteration counts from measured per-iteration costs, written as a grid file.

Why: a lent GPU comes for minutes, not hours, and D2M's pre-training and distillation cost per iteration
is only known once measured on that card. ``benchmarks/d2m_cost.py --json`` measures both loops on the
card; this script turns the measurement and the seconds granted to each loop into explicit iteration
counts, written into a copy of a grid file as ``[hparams.<d2m method>]`` overrides. The counts are
therefore plain hyper-parameters — recorded in every cell's config and hash, reproducible on any machine —
and the grid's description says it is a reduced budget sized to the named card.

    python -m benchmarks.d2m_cost --dataset cifar10 --budget paper --device cuda --pretrain-iterations 40 \\
        --iterations 20 --warmup 5 --json cost.json
    python -m benchmarks.d2m_fit --cost cost.json --grid experiments/d2m-gpu.toml --pretrain-seconds 150 \\
        --distill-seconds 150 --out sized.toml
    # a second distillation length on the same pre-trained generator (same pre-training count, so same cache entry):
    python -m benchmarks.d2m_fit --cost cost.json --grid experiments/d2m-gpu.toml --pretrain-seconds 150 \\
        --distill-iterations 150 --methods d2m --out sized-150.toml
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmark.cli import comma_list
from benchmark.data import dataset_spec
from benchmark.distiller import get_distiller
from benchmark.errors import BenchmarkError, invalid_value
from d2m.distill import D2M

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROUND_TO = 50  # iteration counts are multiples of this, so sized runs on similar cards share their cells


def iterations_within(seconds: float, per_iteration: float, ceiling: int) -> int:
    """The most whole ``ROUND_TO`` blocks of iterations that fit ``seconds``: at least one, at most ``ceiling``."""
    if not per_iteration > 0:
        raise invalid_value("per-iteration cost", per_iteration, "a positive number of seconds")
    fitting = int(seconds / per_iteration) // ROUND_TO * ROUND_TO
    return max(ROUND_TO, min(fitting, ceiling))


def loops_of(method: str) -> tuple[bool, bool]:
    """Whether ``method`` pre-trains (or reads the cached) generator, and whether it runs a distillation loop:
    read off the registered D2M class, so a new D2M variant is sized without touching this file."""
    distiller = get_distiller(method)
    if not isinstance(distiller, D2M):
        return False, False
    return distiller.pretrained, bool(distiller.losses)


def toml_value(value: Any) -> str:
    """A grid value as TOML: the JSON literal of a string, number, boolean or (nested) list of them is valid TOML,
    as ``tests/conftest.py::grid_text`` writes grids too; anything else (null, an object) is refused."""
    text = json.dumps(value)
    try:
        if tomllib.loads(f"v = {text}")["v"] == value:
            return text
    except tomllib.TOMLDecodeError:
        pass
    raise BenchmarkError(f"grid value {value!r}: only strings, numbers, booleans and lists of them are written")


def sized_grid(grid: dict[str, Any], cost: dict[str, Any], pretrain_iterations: int, distill_iterations: int,
               note: str, methods: list[str] | None = None) -> str:
    """``grid`` (a parsed grid file without sweeps) as TOML text for the dataset ``cost`` was measured on,
    with the D2M iteration counts set; ``methods`` keeps only those of the grid's methods."""
    if methods is not None:
        known = grid.get("methods", [])
        if any(m not in known for m in methods):
            raise invalid_value("methods", ",".join(methods), f"some of the grid's ({', '.join(known)})")
        grid = {**grid, "methods": list(methods),
                "hparams": {m: v for m, v in grid.get("hparams", {}).items() if m in methods}}
    if "sweep" in grid:
        raise BenchmarkError("the grid must not sweep; size each variant's grid on its own")
    if cost["dataset"] not in grid.get("datasets", []):
        datasets = ", ".join(grid.get("datasets", []))
        raise invalid_value("cost dataset", cost["dataset"], f"one of the grid's ({datasets})")
    if cost["budget"] != grid.get("budget", "paper"):
        raise invalid_value("cost budget", cost["budget"], f"the grid's ({grid.get('budget', 'paper')})")
    hparams = {m: dict(v) for m, v in grid.get("hparams", {}).items()}
    for method in grid.get("methods", []):
        pretrains, distills = loops_of(method)
        if pretrains:
            hparams.setdefault(method, {})["pretrain_iterations"] = pretrain_iterations
        if distills:
            hparams.setdefault(method, {})["iterations"] = distill_iterations
    top = {k: v for k, v in grid.items() if k != "hparams"} | {"datasets": [cost["dataset"]]}
    top["description"] = f"{top.get('description', 'grid')} [{note}]"
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for method, values in hparams.items():
        lines += ["", f'[hparams."{method}"]'] + [f"{k} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cost", type=Path, required=True, help="the JSON of benchmarks/d2m_cost.py --json")
    parser.add_argument("--grid", type=Path, required=True, help="the grid file to size (no sweeps)")
    parser.add_argument("--pretrain-seconds", type=float, required=True)
    length = parser.add_mutually_exclusive_group(required=True)
    length.add_argument("--distill-seconds", type=float, help="seconds of distillation to size the count to")
    length.add_argument("--distill-iterations", type=int, help="the distillation count itself (another length on "
                                                                "the same pre-trained generator)")
    parser.add_argument("--methods", help="comma list: keep only these of the grid's methods")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        cost = json.loads(args.cost.read_text())
        grid = tomllib.loads(args.grid.read_text())
        preset = get_distiller("d2m").resolve_hparams(dataset_spec(cost["dataset"]), None, cost["budget"])
        pretrain = iterations_within(args.pretrain_seconds, cost["pretrain_s_per_iteration"],
                                     preset.pretrain_iterations)
        if args.distill_iterations is None:
            distill = iterations_within(args.distill_seconds, cost["distill_s_per_iteration"], preset.iterations)
            distilling = f"{args.distill_seconds:.0f} s of distillation ({distill} of {preset.iterations})"
        elif 0 < args.distill_iterations <= preset.iterations:
            distill = args.distill_iterations
            distilling = f"a distillation of {distill} of {preset.iterations} iterations"
        else:
            raise invalid_value("--distill-iterations", args.distill_iterations, f"1 to {preset.iterations}")
        note = (f"REDUCED: sized on {cost['device']} to {args.pretrain_seconds:.0f} s of pre-training "
                f"({pretrain} of {preset.pretrain_iterations} iterations) and {distilling}")
        args.out.write_text(sized_grid(grid, cost, pretrain, distill, note, comma_list("--methods", args.methods)))
    except KeyError as error:
        print(f"d2m_fit: {args.cost} lacks the field {error} (write it with benchmarks/d2m_cost.py --json)",
              file=sys.stderr)
        return 2
    except (OSError, ValueError, tomllib.TOMLDecodeError, BenchmarkError) as error:
        print(f"d2m_fit: {error}", file=sys.stderr)
        return 2
    print(f"d2m_fit: {note} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
