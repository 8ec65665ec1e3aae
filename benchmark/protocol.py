"""The evaluation protocol as data: how a network is trained on a synthetic set and tested.

``paper`` is the field's standard (DC/DSA/DM; VICO-UoE/DatasetCondensation ``utils.py::evaluate_synset``):
SGD with momentum 0.9, lr 0.01, weight decay 5e-4, batch 256, lr ×0.1 at half of 1000 epochs (the
optimizer is rebuilt there, so momentum restarts), DSA augmentation per batch, top-1 accuracy of the last
epoch on the whole real test set. The reference loop runs ``Epoch + 1`` epochs and decays after epoch
``Epoch // 2 + 1``; here ``epochs`` means exactly that many, decaying after half of them.

Reduced protocols are named presets (``smoke``, ``ci``), printed beside every table that uses them.
A method may override protocol values for its own sets through ``SyntheticSet.eval_hints`` (MTT's
learned learning rate, for example); the overridden protocol is what the record keeps. ``use_set_lr = false``
(a grid's ``[protocol_overrides]``) trains at the protocol's own lr instead of a set's, to tell what the images
contribute from what the step size does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from benchmark.augment import DEFAULT_STRATEGY, parse_strategy
from benchmark.errors import BenchmarkError, invalid_value
from benchmark.registry import Registry

PRECISIONS = ("fp32", "bf16")  # bf16: autocast of forward passes (pays off only with native bf16 units)
KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
RECORDED_OFF_DEFAULT = {"precision": "fp32", "use_set_lr": True}
"""Fields added after the first results were stored: a record holds one only where it differs from this value,
so the keys of the earlier cells did not change."""


@dataclass(frozen=True)
class EvalProtocol:
    """Training and testing settings of the evaluation networks."""

    name: str
    epochs: int = 1000
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    lr_decay_fraction: float = 0.5
    lr_decay_factor: float = 0.1
    dsa_strategy: str = DEFAULT_STRATEGY
    models: int = 5
    full_data_epochs: int = 30
    full_data_min_steps: int = 2000
    test_batch_size: int = 500
    precision: str = "fp32"
    use_set_lr: bool = True  # train at the lr a set carries (MTT's learned α), as the reference's evaluation does
    description: str = ""

    def __post_init__(self) -> None:
        for declared in dataclasses.fields(self):  # a wrong type would fail deep inside the checks below or training
            value, kind = getattr(self, declared.name), type(declared.default)
            if declared.default is not dataclasses.MISSING and (
                    not (isinstance(value, kind) or (kind is float and isinstance(value, int)))
                    or (isinstance(value, bool) and kind is not bool)):
                raise invalid_value(f"protocol.{declared.name}", value, KIND_NAMES.get(kind, kind.__name__))
        if self.full_data_min_steps < 0:
            raise invalid_value("protocol.full_data_min_steps", self.full_data_min_steps, "a non-negative integer")
        for field in ("epochs", "batch_size", "models", "full_data_epochs", "test_batch_size"):
            if getattr(self, field) < 1:
                raise invalid_value(f"protocol.{field}", getattr(self, field), "a positive integer")
        if not self.lr > 0:
            raise invalid_value("protocol.lr", self.lr, "a positive number")
        if not 0 <= self.lr_decay_fraction <= 1:
            raise invalid_value("protocol.lr_decay_fraction", self.lr_decay_fraction, "a fraction in [0, 1]")
        parse_strategy(self.dsa_strategy)
        if self.precision not in PRECISIONS:
            raise invalid_value("protocol.precision", self.precision, f"one of {', '.join(PRECISIONS)}")

    def whole_dataset_epochs(self, images: int) -> int:
        """Epochs on the whole training set: ``full_data_epochs``, or more on a small dataset so the network
        takes at least ``full_data_min_steps`` SGD steps (as many as the IPC-50 protocol gives a set of 500
        images: 1000 epochs of two batches), or the upper bound would be under-trained on a dataset as small
        as the digits (6 batches an epoch)."""
        steps_per_epoch = -(-images // self.batch_size)
        return max(self.full_data_epochs, -(-self.full_data_min_steps // steps_per_epoch))

    def decay_epoch(self, epochs: int) -> int:
        return int(epochs * self.lr_decay_fraction)

    def optimizer(self, params: Iterable[torch.Tensor]) -> torch.optim.SGD:
        """The evaluation networks' optimiser: SGD with this protocol's lr, momentum and weight decay."""
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    def schedule(self, optimizer: torch.optim.Optimizer, epoch: int, epochs: int) -> None:
        """At the decay epoch, lr × ``lr_decay_factor`` and momentum restarted: the reference rebuilds its
        SGD optimizer there."""
        if epoch == self.decay_epoch(epochs) and epoch > 0:
            for group in optimizer.param_groups:
                group["lr"] = self.lr * self.lr_decay_factor
            optimizer.state.clear()

    def overridden(self, overrides: dict) -> EvalProtocol:
        """This protocol with some training values replaced (a method's hint or a grid override)."""
        allowed = {f.name for f in dataclasses.fields(self)} - {"name", "description"}
        unknown = set(overrides) - allowed
        if unknown:
            raise BenchmarkError(f"unknown protocol override {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return dataclasses.replace(self, **overrides) if overrides else self

    def as_record(self) -> dict:
        """The protocol as a record (and cell key) holds it, without the later fields at their defaults
        (:data:`RECORDED_OFF_DEFAULT`)."""
        record = dataclasses.asdict(self)
        for name, default in RECORDED_OFF_DEFAULT.items():
            if record[name] == default:
                del record[name]
        return record


PROTOCOLS: Registry[EvalProtocol] = Registry("protocol")


def register_protocol(protocol: EvalProtocol) -> EvalProtocol:
    PROTOCOLS.register(protocol.name, protocol)
    return protocol


def get_protocol(name: str) -> EvalProtocol:
    return PROTOCOLS.get(name)


PAPER = register_protocol(EvalProtocol(
    name="paper",
    description="DC/DSA/DM standard: 1000 epochs, SGD lr 0.01 (x0.1 at 500), batch 256, DSA, 5 models; "
                "full data 30 epochs (>= 2000 steps)",
))
SMOKE = register_protocol(EvalProtocol(
    name="smoke", epochs=25, models=1, full_data_epochs=1, full_data_min_steps=50,
    description="REDUCED for the smoke grid: 25 epochs (x0.1 at 12), 1 model per distilled set, full data >= 50 steps",
))
REDUCED = register_protocol(EvalProtocol(
    name="reduced", epochs=300, models=2, full_data_epochs=3, full_data_min_steps=600,
    description="REDUCED for CPU evidence runs: 300 epochs (x0.1 at 150), 2 networks per set, full data 3 epochs "
                "(>= 600 steps)",
))
CI = register_protocol(EvalProtocol(
    name="ci", epochs=4, models=1, full_data_epochs=1, full_data_min_steps=0, test_batch_size=256,
    description="REDUCED for tests only: 4 epochs, 1 model; numbers are meaningless",
))
