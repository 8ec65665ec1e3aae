"""The plugin interface every distillation method implements, and the method registry.

A method is a :class:`Distiller`: given a :class:`DistillTask` (real training data, dataset spec, IPC,
budget, device, seed, resolved hyper-parameters) it returns an :class:`Artifact`. An artifact is what the
store keeps; ``synthesize(ipc, seed)`` turns it into the :class:`SyntheticSet` that the evaluator trains
on. Pixel methods produce one set per IPC (asking for another raises :class:`NeedsRedistillation`);
generator methods such as D2M serve any IPC from one distillation.

Built-in methods register with ``@register_distiller("name")`` in the ``baselines`` and ``d2m`` packages;
installed third-party packages appear through the entry-point group ``d2m_bench.distillers`` (each entry
``name = "package.module:DistillerClass"``), with no change to the harness.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor

from benchmark.data.images import LabelledImages
from benchmark.data.spec import DatasetSpec
from benchmark.errors import BenchmarkError, invalid_value
from benchmark.registry import Registry, first_doc_line
from benchmark.seeding import generator as seeded_generator

ENTRY_POINT_GROUP = "d2m_bench.distillers"
BUILTIN_METHOD_PACKAGES = ("baselines", "d2m")
PAPER_BUDGET = "paper"
"""The references' full-length budget preset, sized for a GPU (also ``benchmark.grid.Grid``'s default budget)."""
BUDGET_PRESETS = (PAPER_BUDGET, "cpu-small")


class NeedsRedistillation(BenchmarkError):
    """An IPC-specific artifact was asked for a different IPC: serving it means distilling again."""


# --- what the evaluator trains on --------------------------------------------------------------------

@dataclass
class SyntheticSet:
    """A training set: normalised float images and hard (N,) or soft (N, classes) labels.

    ``eval_hints`` lets a method override protocol values for its set (``{"lr": 0.03}`` for MTT's learned
    learning rate); the evaluator records the protocol it actually used.
    """

    x: Tensor
    y: Tensor
    eval_hints: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def soft_labels(self) -> bool:
        return self.y.ndim == 2

    def to(self, device: torch.device | str) -> SyntheticSet:
        return SyntheticSet(self.x.to(device), self.y.to(device), dict(self.eval_hints))

    def validate(self, spec: DatasetSpec) -> None:
        """Raise a one-line error unless the set has ``spec``'s shape, valid labels and finite pixels."""
        if self.x.ndim != 4 or tuple(self.x.shape[1:]) != spec.shape:
            raise BenchmarkError(f"synthetic set images have shape {tuple(self.x.shape)}, expected (N, {spec.shape})")
        if self.y.shape[0] != self.x.shape[0]:
            raise BenchmarkError(f"synthetic set has {self.y.shape[0]} labels for {self.x.shape[0]} images")
        if self.soft_labels:
            if self.y.shape[1] != spec.num_classes:
                raise BenchmarkError(f"soft labels have {self.y.shape[1]} classes, expected {spec.num_classes}")
        elif len(self.y) and (int(self.y.min()) < 0 or int(self.y.max()) >= spec.num_classes):
            raise BenchmarkError(f"synthetic labels must lie in [0, {spec.num_classes - 1}]")
        if not torch.isfinite(self.x).all():
            raise BenchmarkError("synthetic set contains NaN or infinite pixels")

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        """Shuffled minibatches, kept on the set's device."""
        order = torch.randperm(len(self), generator=generator, device=generator.device).to(self.x.device)
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size]
            yield self.x[idx], self.y[idx]


@dataclass
class RealTrainingSet:
    """The whole real training split as a training set (the ``full`` upper-bound row), streamed in batches."""

    images: LabelledImages
    eval_hints: dict[str, Any] = field(default_factory=lambda: {"whole_dataset": True})
    soft_labels: ClassVar[bool] = False

    def __len__(self) -> int:
        return len(self.images)

    def validate(self, spec: DatasetSpec) -> None:
        if self.images.spec.shape != spec.shape:
            raise BenchmarkError(f"training images have shape {self.images.spec.shape}, expected {spec.shape}")

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        return self.images.batches(batch_size, generator)


TrainingSet = SyntheticSet | RealTrainingSet


# --- what a distillation produces --------------------------------------------------------------------

@dataclass(frozen=True)
class LoadContext:
    """What an artifact may need when it is loaded back from the store in another process."""

    device: torch.device
    train: Callable[[], LabelledImages]


class Artifact(ABC):
    """The product of one distillation, as kept by the results store."""

    serves_any_ipc: ClassVar[bool] = False

    @abstractmethod
    def synthesize(self, ipc: int, seed: int) -> TrainingSet:
        """The training set for ``ipc`` images per class; ``seed`` fixes any sampling."""

    @abstractmethod
    def storage_bytes(self) -> int:
        """Bytes that must be kept to serve this artifact (pixels, or generator parameters)."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the artifact into the (empty, existing) directory ``path``."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, context: LoadContext) -> Artifact:
        """Read an artifact written by :meth:`save`."""

    def summary(self) -> dict[str, Any]:
        """Facts about the artifact worth keeping in its record (sizes, learned values)."""
        return {}


class PixelArtifact(Artifact):
    """A fixed set of images for one IPC: what coresets and pixel-learning methods produce."""

    serves_any_ipc = False

    def __init__(self, synthetic_set: SyntheticSet, ipc: int, extra: dict | None = None) -> None:
        self.synthetic_set = synthetic_set
        self.ipc = ipc
        self.extra = extra or {}

    def synthesize(self, ipc: int, seed: int) -> SyntheticSet:
        if ipc != self.ipc:
            raise NeedsRedistillation(f"this artifact holds {self.ipc} image(s) per class; IPC {ipc} needs "
                                      "its own distillation")
        return self.synthetic_set

    def storage_bytes(self) -> int:
        s = self.synthetic_set
        return s.x.numel() * s.x.element_size() + s.y.numel() * s.y.element_size()

    def save(self, path: Path) -> None:
        s = self.synthetic_set
        torch.save({"x": s.x.detach().cpu(), "y": s.y.detach().cpu(), "eval_hints": s.eval_hints, "ipc": self.ipc,
                    "extra": self.extra}, path / "synthetic_set.pt")

    @classmethod
    def load(cls, path: Path, context: LoadContext) -> PixelArtifact:
        data = torch.load(path / "synthetic_set.pt", map_location=context.device, weights_only=True)
        return cls(SyntheticSet(data["x"], data["y"], data["eval_hints"]), data["ipc"], data["extra"])

    def summary(self) -> dict[str, Any]:
        return {"images": len(self.synthetic_set), "ipc": self.ipc, **self.extra}


# --- what a method is given ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Budget:
    """How much compute a distillation may spend: a named preset and an optional iteration cap (tests)."""

    preset: str = "paper"
    max_iterations: int | None = None

    def __post_init__(self) -> None:
        if self.max_iterations is not None and self.max_iterations < 1:
            raise invalid_value("budget.max_iterations", self.max_iterations, "a positive integer or unset")

    def cap(self, iterations: int) -> int:
        return iterations if self.max_iterations is None else min(iterations, self.max_iterations)


@dataclass
class DistillTask:
    """Everything a method may use; nothing else reaches it."""

    train: LabelledImages
    spec: DatasetSpec
    ipc: int | None
    budget: Budget
    device: torch.device
    seed: int
    hparams: Any
    work_dir: Path
    cache_dir: Path
    progress: bool = False
    log: Callable[[str], None] = field(default=lambda message: None)
    compile: str = "off"  # DM's embedding forwards through torch.compile (benchmark.fast_embedding): auto, on, off

    def generator(self, purpose: str, device: torch.device | str | None = None) -> torch.Generator:
        """An independent random stream of this task for ``purpose`` (``"init"``, ``"real-batches"``...)."""
        return seeded_generator(self.seed, purpose, device=device if device is not None else self.device)


@dataclass(frozen=True)
class NoHparams:
    """A method without hyper-parameters."""


H = TypeVar("H")


class Distiller(ABC):
    """A distillation method. Subclasses set ``Hparams`` (a frozen dataclass) and implement ``distill``."""

    name: ClassVar[str] = ""
    serves_any_ipc: ClassVar[bool] = False  # one artifact serves every IPC (generators): distilled once
    ipc_independent: ClassVar[bool] = False  # the training set ignores IPC (``full``): evaluated once
    Hparams: ClassVar[type] = NoHparams
    ablation_of: ClassVar[str] = ""  # the method this one ablates: reports test that method against it
    unread_hparams: ClassVar[frozenset[str]] = frozenset()  # of ``Hparams``, what this method ignores (an
    #                                                         ablation matches its parent's runs on the rest)

    def default_hparams(self, spec: DatasetSpec, ipc: int | None, preset: str) -> Any:
        """Defaults for this dataset family, IPC and budget preset (subclasses cite their sources)."""
        return self.Hparams()

    def check(self, spec: DatasetSpec, ipc: int | None) -> None:
        """Raise a one-line :class:`BenchmarkError` if this method cannot serve ``spec`` at ``ipc``."""
        return None

    def resolve_hparams(self, spec: DatasetSpec, ipc: int | None, preset: str, overrides: dict | None = None) -> Any:
        """Defaults with ``overrides`` applied; unknown names or bad values are one-line errors."""
        if preset not in BUDGET_PRESETS:
            raise invalid_value("budget", preset, f"one of {', '.join(BUDGET_PRESETS)}")
        base = self.default_hparams(spec, ipc, preset)
        overrides = dict(overrides or {})
        names = {f.name for f in dataclasses.fields(base)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise BenchmarkError(f"method {self.name}: unknown hyper-parameter {unknown}; "
                                 f"allowed: {', '.join(sorted(names)) or 'none'}")
        for key, value in overrides.items():
            expected = type(getattr(base, key))
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                overrides[key] = float(value)
            elif expected is tuple and isinstance(value, list):
                overrides[key] = tuple(value)
            elif getattr(base, key) is not None and not isinstance(overrides[key], expected):
                raise invalid_value(f"{self.name}.{key}", value, f"a {expected.__name__}")
        return dataclasses.replace(base, **overrides)

    @abstractmethod
    def distill(self, task: DistillTask) -> Artifact:
        """Distil ``task.train`` under ``task.hparams`` and ``task.budget`` into an artifact."""

    @classmethod
    def description(cls) -> str:
        return first_doc_line(cls)


DISTILLERS: Registry[type[Distiller]] = Registry("method")


def register_distiller(name: str) -> Callable[[type[Distiller]], type[Distiller]]:
    """Class decorator registering a built-in method under ``name``."""

    def add(cls: type[Distiller]) -> type[Distiller]:
        cls.name = name
        DISTILLERS.register(name, cls)
        return cls

    return add


def _import_builtins() -> None:
    for package in BUILTIN_METHOD_PACKAGES:
        importlib.import_module(package)


def _load_entry_points() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in DISTILLERS._entries:
            continue
        try:
            cls = ep.load()
        except Exception as e:  # a broken third-party plugin must not take the built-in methods down
            print(f"warning: method plugin '{ep.name}' ({ep.value}) failed to load: {e}", file=sys.stderr)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Distiller)):
            print(f"warning: method plugin '{ep.name}' ({ep.value}) is not a Distiller subclass", file=sys.stderr)
            continue
        cls.name = ep.name
        DISTILLERS.register(ep.name, cls)


DISTILLERS.add_populator(_import_builtins)
DISTILLERS.add_populator(_load_entry_points)


def get_distiller(name: str) -> Distiller:
    return DISTILLERS.get(name)()


def list_distillers(pattern: str = "*") -> list[str]:
    return DISTILLERS.names(pattern)


def ablations() -> dict[str, tuple[str, frozenset[str]]]:
    """Every registered ablation → (the method it ablates, the hyper-parameters it ignores)."""
    out = {}
    for name in list_distillers():
        cls = DISTILLERS.get(name)
        if cls.ablation_of:
            out[name] = (cls.ablation_of, frozenset(cls.unread_hparams))
    return out


def artifact_class_path(artifact: Artifact) -> str:
    cls = type(artifact)
    return f"{cls.__module__}:{cls.__qualname__}"


def artifact_class(path: str) -> type[Artifact]:
    module, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Artifact)):
        raise BenchmarkError(f"{path} is not an Artifact class")
    return obj
