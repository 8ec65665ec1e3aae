"""What ``--backend slurm`` asks the cluster for, and whether the cluster can give it, before submitting.

Resources come from ``slurm/cluster.toml`` (or ``--slurm-config FILE``) and are overridden by the
``--slurm-*`` flags; the file's optional ``[distill]`` and ``[eval]`` tables override per stage (an
evaluation usually needs less than a distillation). Before anything is submitted, :func:`preflight`
checks that SLURM answers and that the requested partition has a node with the CPUs, memory and GPUs
asked for and a time limit at least as long: bad resources are one line and exit status 2, and nothing
is queued.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import BenchmarkError, invalid_value, unknown_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_CONFIG = Path("slurm/cluster.toml")
STAGE_TABLES = ("distill", "eval")


@dataclass(frozen=True)
class StageResources:
    """One array task's request (``sbatch`` flags)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_min: int = 60
    cpus: int = 1
    mem_gb: float = 4.0
    gpus: int = 0
    cells_per_job: int = 1  # cells run one after the other in one array task (amortises start-up)

    def describe(self) -> str:
        return (f"cpus={self.cpus}, mem={self.mem_gb:g}GB, gpus={self.gpus}, time={self.time_min}min"
                + (f", partition={self.partition}" if self.partition else ""))


RESOURCE_KEYS = tuple(f.name for f in dataclasses.fields(StageResources))
FILE_KEYS = (*RESOURCE_KEYS, "time", "array_parallelism", *STAGE_TABLES)


@dataclass(frozen=True)
class SlurmOptions:
    stages: dict[str, StageResources] = field(default_factory=lambda: {s: StageResources() for s in STAGE_TABLES})
    array_parallelism: int = 64
    wait: bool = True
    poll_seconds: float = 2.0


def parse_minutes(value: object, name: str) -> int:
    """``90``, ``"90"``, ``"1:30:00"``, ``"2-00:00:00"`` → minutes (SLURM's --time forms)."""
    text = str(value).strip()
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not match or isinstance(value, bool):
        raise invalid_value(name, value, "minutes, HH:MM:SS or D-HH:MM:SS")
    days, a, b, c = (int(g) if g else None for g in match.groups())
    if b is None:  # "M" or "D-H"
        minutes = a * 60 if days is not None else a
    elif c is None:  # "MM:SS" (or "D-HH:MM")
        minutes = a * 60 + b if days is not None else a + (1 if b else 0)
    else:
        minutes = a * 60 + b + (1 if c else 0)
    minutes += (days or 0) * 24 * 60
    if minutes < 1:
        raise invalid_value(name, value, "at least one minute")
    return minutes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("--backend slurm (flags override slurm/cluster.toml)")
    g.add_argument("--slurm-config", help=f"cluster resources file (default: {DEFAULT_CONFIG} if present)")
    g.add_argument("--slurm-partition", help="partition (default: the cluster's default partition)")
    g.add_argument("--slurm-account", help="account to charge")
    g.add_argument("--slurm-qos", help="quality of service")
    g.add_argument("--slurm-time", help="time limit per array task: minutes or HH:MM:SS (a task that reaches it "
                                        "checkpoints and is requeued)")
    g.add_argument("--slurm-cpus", type=int, help="CPUs per task (torch threads)")
    g.add_argument("--slurm-mem", type=float, help="memory per task, GB")
    g.add_argument("--slurm-gpus", type=int, help="GPUs per task")
    g.add_argument("--slurm-cells-per-job", type=int, help="cells per array task (default 1)")
    g.add_argument("--slurm-array-parallelism", type=int, help="array tasks running at once (default 64)")
    g.add_argument("--no-wait", action="store_true", help="submit and return; rerun the same command to collect")


def read_config(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise BenchmarkError(f"--slurm-config {path}: cannot read it ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise BenchmarkError(f"--slurm-config {path}: not valid TOML ({e})") from None
    for table, keys in [(data, FILE_KEYS)] + [(data.get(s, {}), (*RESOURCE_KEYS, "time")) for s in STAGE_TABLES]:
        unknown = sorted(set(table) - set(keys))
        if unknown:
            raise BenchmarkError(f"{path}: unknown key {unknown}; allowed: {', '.join(keys)}")
    return data


def resources_from(table: dict, base: StageResources, source: str) -> StageResources:
    values = {k: table[k] for k in RESOURCE_KEYS if k in table}
    if "time" in table:
        values["time_min"] = parse_minutes(table["time"], f"{source} time")
    for key in ("cpus", "gpus", "cells_per_job", "time_min"):
        if key in values and (not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] < 0
                              or (values[key] == 0 and key != "gpus")):
            allowed = "0 or a positive integer" if key == "gpus" else "a positive integer"
            raise invalid_value(f"{source} {key}", values[key], allowed)
    if "mem_gb" in values and (not isinstance(values["mem_gb"], int | float) or values["mem_gb"] <= 0):
        raise invalid_value(f"{source} mem_gb", values["mem_gb"], "a positive number of GB")
    return dataclasses.replace(base, **values)


def options(args: argparse.Namespace) -> SlurmOptions:
    """Defaults, then the config file (top level, then per stage), then the flags (all stages)."""
    path = Path(args.slurm_config) if args.slurm_config else DEFAULT_CONFIG
    data = read_config(path) if (args.slurm_config or path.is_file()) else {}
    base = resources_from(data, StageResources(), str(path))
    flags = {"partition": args.slurm_partition, "account": args.slurm_account, "qos": args.slurm_qos,
             "cpus": args.slurm_cpus, "mem_gb": args.slurm_mem, "gpus": args.slurm_gpus,
             "cells_per_job": args.slurm_cells_per_job}
    flags = {k: v for k, v in flags.items() if v is not None}
    if args.slurm_time is not None:
        flags["time_min"] = parse_minutes(args.slurm_time, "--slurm-time")
    stages = {}
    for stage in STAGE_TABLES:
        from_file = resources_from(data.get(stage, {}), base, f"{path} [{stage}]")
        stages[stage] = resources_from(flags, from_file, "--slurm")
    parallelism = args.slurm_array_parallelism or data.get("array_parallelism", 64)
    if not isinstance(parallelism, int) or parallelism < 1:
        raise invalid_value("--slurm-array-parallelism", parallelism, "a positive integer")
    return SlurmOptions(stages=stages, array_parallelism=parallelism, wait=not args.no_wait)


# --- what the cluster offers -------------------------------------------------------------------------

@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    cpus: int  # the largest node's
    mem_mb: int
    gpus: int
    time_min: int | None  # None: no limit

    def describe(self) -> str:
        limit = "no time limit" if self.time_min is None else f"time limit {self.time_min}min"
        return f"{self.name}: {self.cpus} CPUs, {self.mem_mb / 1024:.0f}GB, {self.gpus} GPUs, {limit}"


def first_int(text: str) -> int:
    match = re.match(r"\d+", text)
    return int(match.group()) if match else 0


def gres_gpus(gres: str) -> int:
    """``gpu:4``, ``gpu:a100:8(S:0-1)``, ``(null)`` → the GPU count."""
    return sum(first_int(item.split("(")[0].rsplit(":", 1)[-1]) for item in gres.split(",") if item.startswith("gpu"))


def partition_time(limit: str) -> int | None:
    return None if limit in ("infinite", "UNLIMITED", "n/a") else parse_minutes(limit, "partition time limit")


def slurm_command(*argv: str) -> str:
    """Run a SLURM client command; a missing SLURM or a silent controller is a one-line error."""
    if shutil.which(argv[0]) is None:
        raise BenchmarkError(f"--backend slurm: SLURM not found ({argv[0]} is not on PATH); on one machine start "
                             "slurm/local-cluster.sh start, or use --backend local or ray")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"--backend slurm: `{' '.join(argv)}` did not answer in 60 s") from None
    if done.returncode != 0:
        reason = " ".join((done.stderr or done.stdout).split())[:300]
        raise BenchmarkError(f"--backend slurm: `{' '.join(argv)}` failed: {reason}")
    return done.stdout


def partitions() -> list[Partition]:
    found: dict[str, Partition] = {}
    for line in slurm_command("sinfo", "-h", "-o", "%P|%c|%m|%G|%l").splitlines():
        name, cpus, mem, gres, limit = line.strip().split("|")
        default = name.endswith("*")
        name = name.rstrip("*")
        seen = found.get(name)
        part = Partition(name, default, first_int(cpus), first_int(mem), gres_gpus(gres), partition_time(limit))
        if seen:  # heterogeneous nodes: one line per node type; keep the largest
            part = Partition(name, default or seen.default, max(part.cpus, seen.cpus), max(part.mem_mb, seen.mem_mb),
                             max(part.gpus, seen.gpus), part.time_min)
        found[name] = part
    return list(found.values())


def unmet(request: StageResources, part: Partition) -> list[str]:
    reasons = []
    if request.cpus > part.cpus:
        reasons.append(f"cpus={request.cpus}")
    if request.mem_gb * 1024 > part.mem_mb:
        reasons.append(f"mem={request.mem_gb:g}GB")
    if request.gpus > part.gpus:
        reasons.append(f"gpus={request.gpus}")
    if part.time_min is not None and request.time_min > part.time_min:
        reasons.append(f"time={request.time_min}min")
    return reasons


def preflight(opts: SlurmOptions) -> None:
    """Raise a one-line error unless every stage's request fits a node of its partition."""
    available = partitions()
    by_name = {p.name: p for p in available}
    for stage, request in opts.stages.items():
        if request.partition is None:
            default = next((p for p in available if p.default), None)
            if default is None:
                raise BenchmarkError("--backend slurm: the cluster has no default partition; pass --slurm-partition "
                                     f"({', '.join(by_name)})")
            part = default
        elif request.partition in by_name:
            part = by_name[request.partition]
        else:
            raise unknown_name("SLURM partition", request.partition, by_name)
        reasons = unmet(request, part)
        if reasons:
            raise BenchmarkError(f"--backend slurm: no node of partition {part.name} can run the {stage} jobs "
                                 f"({', '.join(reasons)}); it offers {part.describe()}")
