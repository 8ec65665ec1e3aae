"""``python -m benchmark.list [datasets|methods|archs|grids|protocols] [PATTERN]``: what the benchmark knows."""

from __future__ import annotations

import argparse
import sys

from benchmark.cli import guarded
from benchmark.data import dataset_spec, list_datasets
from benchmark.distiller import DISTILLERS
from benchmark.grid import builtin_grid_names, grid_description
from benchmark.models import describe_model, list_models
from benchmark.protocol import PROTOCOLS

SECTIONS = ("datasets", "methods", "archs", "grids", "protocols")


def section_lines(section: str, pattern: str) -> list[str]:
    if section == "datasets":
        out = []
        for name in list_datasets(pattern):
            s = dataset_spec(name)
            shape = "x".join(map(str, s.shape))
            out.append(f"  {name:<16} {shape:<10} {s.num_classes:>4} classes  {s.description}")
        return out + ["  npz:PATH         your .npz (x_train, y_train, x_test, y_test)",
                      "  folder:PATH      your ImageFolder tree (PATH/train/<class>/*, PATH/test/<class>/*)",
                      "  val:NAME[@F]     NAME with a stratified F (0.2) of its training split held out as the test "
                      "split, for tuning"]
    if section == "methods":
        return [f"  {name:<14} {'any IPC' if cls.serves_any_ipc else 'per IPC':<8} {cls.description()}"
                for name, cls in DISTILLERS.items(pattern)]
    if section == "archs":
        return [f"  {name:<16} {describe_model(name)}" for name in list_models(pattern)]
    if section == "grids":
        import fnmatch

        names = [name for name in builtin_grid_names() if fnmatch.fnmatch(name, pattern)]
        return [f"  {name:<16} {grid_description(name)}" for name in names]
    return [f"  {name:<10} {p.description}" for name, p in PROTOCOLS.items(pattern)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.list", description=__doc__.splitlines()[0])
    parser.add_argument("section", nargs="?", choices=SECTIONS, help="one section only (default: all)")
    parser.add_argument("pattern", nargs="?", default="*", help="fnmatch filter on names, e.g. 'convnet_*'")
    args = parser.parse_args(argv)

    def body() -> int:
        for section in [args.section] if args.section else SECTIONS:
            print(f"{section}:")
            print("\n".join(section_lines(section, args.pattern)))
        return 0

    return guarded(body)


if __name__ == "__main__":
    sys.exit(main())
