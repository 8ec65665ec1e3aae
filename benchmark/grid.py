"""Grids: named TOML files listing datasets × methods × IPCs × architectures × seeds, plus settings.

A grid file holds these keys (only ``datasets`` and ``methods`` are required)::

    description = "what this grid answers"
    protocol = "paper"            # evaluation protocol preset (benchmark.protocol)
    budget = "paper"              # distillation budget preset every method defines
    datasets = ["mnist", "cifar10"]
    methods = ["random", "dm", "d2m"]
    ipc = [1, 10, 50]
    archs = ["convnet"]
    seeds = [0, 1, 2]             # distillation seeds; each artifact gets protocol.models networks
    models = 1                    # optional: evaluation networks per artifact, replacing the protocol's
    [protocol_overrides]          # optional: other protocol values replaced (benchmark.protocol.EvalProtocol)
    use_set_lr = false            # e.g. train MTT's sets at the protocol's lr, not their learned one
    sweep_mode = "product"        # sweep axes multiply; "one-at-a-time": each axis varies alone while the
                                  # others keep their defaults (a sensitivity study, the D2M paper's Fig. 4)
    skip_unsupported = true       # drop (and list) what a method's check() refuses instead of failing
    [ipc_by_dataset]              # replaces ``ipc`` for some datasets (ImageNet-1K stops at 10)
    imagenet1k-64 = [1, 10]
    [hparams.d2m]                 # hyper-parameter overrides per method
    temperature = 4.0
    [sweep]                       # hyper-parameter axes: every value becomes its own cells
    "d2m.temperature" = [1.0, 2.0, 4.0, 8.0]
    "d2m.task_balance" = [0.0, 1.0, 10.0]

Command-line ``--datasets/--methods/--ipc/--archs/--seeds`` replace that axis of any grid.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError, invalid_value, unknown_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

GRID_KEYS = ("description", "protocol", "budget", "datasets", "methods", "ipc", "archs", "seeds", "ipc_by_dataset",
             "hparams", "sweep", "sweep_mode", "max_iterations", "models", "skip_unsupported", "protocol_overrides")
SWEEP_MODES = ("product", "one-at-a-time")


@dataclass(frozen=True)
class Grid:
    """A parsed grid: the axes of the experiment and the settings shared by all its cells."""

    name: str
    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    description: str = ""
    protocol: str = "paper"
    budget: str = "paper"
    ipc: tuple[int, ...] = (1, 10, 50)
    archs: tuple[str, ...] = ("convnet",)
    seeds: tuple[int, ...] = (0,)
    ipc_by_dataset: dict[str, tuple[int, ...]] = field(default_factory=dict)
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweep: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    sweep_mode: str = "product"
    max_iterations: int | None = None
    models: int | None = None
    skip_unsupported: bool = False
    protocol_overrides: dict[str, Any] = field(default_factory=dict)

    def ipcs_for(self, dataset: str) -> tuple[int, ...]:
        return self.ipc_by_dataset.get(dataset, self.ipc)

    def with_settings(self, budget: str | None = None, protocol: str | None = None, models: int | None = None) -> Grid:
        """Replace the distillation budget, the evaluation protocol or the networks per artifact where given."""
        if models is not None and models < 1:
            raise invalid_value("--models", models, "a positive integer")
        changes = {k: v for k, v in (("budget", budget), ("protocol", protocol), ("models", models)) if v is not None}
        return dataclasses.replace(self, **changes)

    def with_axes(self, **axes: Any) -> Grid:
        """Replace whole axes (``datasets``, ``methods``, ``ipc``, ``archs``, ``seeds``) where given."""
        changes = {k: tuple(v) for k, v in axes.items() if v is not None}
        if "ipc" in changes:
            changes["ipc_by_dataset"] = {}
        return dataclasses.replace(self, **changes)


def _tuple_of(key: str, value: Any, kind: type, source: str) -> tuple:
    valid = isinstance(value, list) and value and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
    if not valid:
        raise BenchmarkError(f"grid {source}: '{key}' must be a non-empty list of {kind.__name__}s, got {value!r}")
    return tuple(value)


def parse_grid(data: dict[str, Any], name: str, source: str) -> Grid:
    """Validate the raw TOML table of a grid; unknown keys and wrong types are one-line errors."""
    unknown = sorted(set(data) - set(GRID_KEYS))
    if unknown:
        raise BenchmarkError(f"grid {source}: unknown key {unknown}; allowed: {', '.join(GRID_KEYS)}")
    for required in ("datasets", "methods"):
        if required not in data:
            raise BenchmarkError(f"grid {source}: missing required key '{required}'")
    kw: dict[str, Any] = {"name": name}
    for key, kind in (("datasets", str), ("methods", str), ("ipc", int), ("archs", str), ("seeds", int)):
        if key in data:
            kw[key] = _tuple_of(key, data[key], kind, source)
    for key in ("description", "protocol", "budget", "sweep_mode"):
        if key in data:
            if not isinstance(data[key], str):
                raise BenchmarkError(f"grid {source}: '{key}' must be a string")
            kw[key] = data[key]
    for key in ("max_iterations", "models"):
        if key in data:
            if not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] < 1:
                raise invalid_value(f"grid {source}: {key}", data[key], "a positive integer")
            kw[key] = data[key]
    if "skip_unsupported" in data:
        if not isinstance(data["skip_unsupported"], bool):
            raise invalid_value(f"grid {source}: skip_unsupported", data["skip_unsupported"], "true or false")
        kw["skip_unsupported"] = data["skip_unsupported"]
    if "protocol_overrides" in data:
        if not isinstance(data["protocol_overrides"], dict):
            raise BenchmarkError(f"grid {source}: [protocol_overrides] must be a table of protocol values")
        kw["protocol_overrides"] = dict(data["protocol_overrides"])
    if "ipc_by_dataset" in data:
        kw["ipc_by_dataset"] = {d: _tuple_of(f"ipc_by_dataset.{d}", v, int, source)
                                for d, v in dict(data["ipc_by_dataset"]).items()}
    if "hparams" in data:
        if not all(isinstance(v, dict) for v in data["hparams"].values()):
            raise BenchmarkError(f"grid {source}: [hparams.<method>] tables must map names to values")
        kw["hparams"] = {m: dict(v) for m, v in data["hparams"].items()}
    if "sweep" in data:
        sweep = {}
        for axis, values in data["sweep"].items():
            if axis == "sweep_mode":
                raise BenchmarkError(f"grid {source}: sweep_mode is a top-level key; write it above the [sweep] table")
            method, dot, param = axis.partition(".")
            if not dot or not method or not param:
                raise BenchmarkError(f"grid {source}: sweep axis '{axis}' must be written 'method.hyperparameter'")
            if not isinstance(values, list) or not values:
                raise BenchmarkError(f"grid {source}: sweep axis '{axis}' must be a non-empty list")
            sweep[axis] = tuple(values)
        kw["sweep"] = sweep
    if kw.get("sweep_mode", "product") not in SWEEP_MODES:
        raise invalid_value(f"grid {source}: sweep_mode", kw["sweep_mode"], f"one of {', '.join(SWEEP_MODES)}")
    for ipc in kw.get("ipc", ()) + tuple(i for v in kw.get("ipc_by_dataset", {}).values() for i in v):
        if ipc < 1:
            raise invalid_value(f"grid {source}: ipc", ipc, "positive integers")
    return Grid(**kw)


def builtin_grid_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("benchmark.grids").iterdir() if p.name.endswith(".toml"))


def load_grid(name_or_path: str) -> Grid:
    """A built-in grid by name (``smoke``, ``paper``, ...) or a user's grid file by path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise BenchmarkError(f"grid file {path} not found")
        text, name, source = path.read_text(), path.stem, str(path)
    else:
        names = builtin_grid_names()
        if name_or_path not in names:
            raise unknown_name("grid", name_or_path, names)
        text = resources.files("benchmark.grids").joinpath(f"{name_or_path}.toml").read_text()
        name, source = name_or_path, f"'{name_or_path}'"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BenchmarkError(f"grid {source}: not valid TOML ({e})") from None
    return parse_grid(data, name, source)


def grid_description(name: str) -> str:
    return load_grid(name).description
