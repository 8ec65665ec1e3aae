"""The evaluation protocol: train fresh networks on a training set, test them on the real test set.

Follows VICO-UoE/DatasetCondensation ``utils.py::evaluate_synset`` + ``epoch`` (see
:mod:`benchmark.protocol` for the values): each of K seeds initialises a network, trains it on shuffled
minibatches with DSA applied per batch, decays the learning rate once (restarting momentum, as the
reference's rebuilt optimizer does), and reports top-1 accuracy of the last epoch on the whole test set.
Nothing is selected on the test set.

A set distilled in ZCA-whitened space (MTT on CIFAR) carries the eval hint ``{"zca": {"eps": ...}}``; the
real test set is then whitened with the fit of the same real training split (:mod:`benchmark.zca`), as the
reference does, and the record says so under ``preprocessing``.

Performance shape (see DESIGN §4): the training set and the test set stay on the device as tensors (no
DataLoader), augmentation is one batched call per minibatch, and the K seeds run in a plain loop on CPU (where it
beats vmap ensembling) and as one stacked, vmapped ensemble on CUDA (:mod:`benchmark.ensemble`). On a CPU each
minibatch step and the test pass run in cache-sized pieces (:mod:`benchmark.blocking`; 1.1–1.6× faster here).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.augment import dsa, strategy_for
from benchmark.blocking import backward_in_pieces, pieces
from benchmark.cuda_graphs import graphs_on
from benchmark.data.images import LabelledImages
from benchmark.data.spec import DatasetSpec
from benchmark.distiller import TrainingSet
from benchmark.ensemble import train_together, trains_together
from benchmark.errors import BenchmarkError
from benchmark.fast_embedding import with_im2col_first_layers
from benchmark.matching import mixes_batch
from benchmark.models import build_model
from benchmark.protocol import EvalProtocol
from benchmark.seeding import derive_seed, generator
from benchmark.zca import WhitenedImages, dataset_zca

SPECIAL_HINTS = ("whole_dataset", "zca")  # hints about the data, not protocol values


@dataclass
class EvalResult:
    """Accuracies (in %) of the K evaluation networks and what it cost to get them."""

    accuracies: list[float]
    seeds: list[int]
    protocol: dict
    train_seconds: float
    test_seconds: float
    epochs: int
    train_images: int
    extra: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(torch.tensor(self.accuracies).mean())

    @property
    def std(self) -> float:
        return float(torch.tensor(self.accuracies).std(unbiased=False)) if len(self.accuracies) > 1 else 0.0


def effective_protocol(protocol: EvalProtocol, training_set: TrainingSet) -> tuple[EvalProtocol, int]:
    """The protocol after the set's hints, and the number of epochs to train for."""
    hints = {k: v for k, v in training_set.eval_hints.items()
             if k not in SPECIAL_HINTS and (k != "lr" or protocol.use_set_lr)}
    protocol = protocol.overridden(hints)
    whole = bool(training_set.eval_hints.get("whole_dataset"))
    return protocol, protocol.whole_dataset_epochs(len(training_set)) if whole else protocol.epochs


def preprocessed_test_set(training_set: TrainingSet, test: LabelledImages, train: LabelledImages | None,
                          cache_dir: Path | None, device: torch.device) -> tuple[LabelledImages, dict]:
    """The test set in the input space of ``training_set`` (whitened if its hints say so) and what was done."""
    hint = training_set.eval_hints.get("zca")
    if hint is None:
        return test, {}
    if train is None or cache_dir is None:
        raise BenchmarkError("this training set is ZCA-whitened; evaluating it needs the real training split and a "
                             "cache directory to fit the same whitening for the test set")
    zca = dataset_zca(train, float(hint["eps"]), cache_dir, device)
    return WhitenedImages(test, zca), {"zca": dict(hint)}


def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy against probability vectors (soft labels); equals the usual loss for one-hot targets."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def train_network(net: nn.Module, training_set: TrainingSet, protocol: EvalProtocol, epochs: int, strategy: str,
                  rng: torch.Generator) -> float:
    """Train ``net`` in place under ``protocol``; returns the last epoch's mean training loss."""
    optimizer = protocol.optimizer(net.parameters())
    loss_fn = soft_cross_entropy if training_set.soft_labels else F.cross_entropy
    bf16 = protocol.precision == "bf16"
    net.train()
    mixes = mixes_batch(net)  # a batch-norm network's batch cannot be split
    total, count = torch.zeros((), device=rng.device), 0
    for epoch in range(epochs):
        protocol.schedule(optimizer, epoch, epochs)
        total, count = torch.zeros((), device=rng.device), 0  # summed on the device: no sync per step
        for x, y in training_set.batches(protocol.batch_size, rng):
            x = dsa(x, strategy, rng)
            optimizer.zero_grad(set_to_none=True)
            loss = backward_in_pieces(net, loss_fn, x, y, not mixes, bf16)
            optimizer.step()
            total += loss * len(x)
            count += len(x)
    last_loss = float(total) / max(count, 1)
    if last_loss != last_loss:
        raise BenchmarkError("evaluation training diverged (loss is NaN)")
    return last_loss


@torch.inference_mode()
def top1_accuracy(net: nn.Module, test: LabelledImages, batch_size: int, precision: str = "fp32") -> float:
    """Top-1 accuracy in % over the whole test split. On a CPU the forward runs in cache-sized pieces through
    a copy whose single-input-channel convolutions are one matrix product each (:class:`Im2colConv2d`: the
    MNIST test pass 1.15× faster here, `benchmarks/RESULTS.md`); the logits equal the network's up to rounding."""
    net.eval()
    if test.device.type == "cpu":
        net = with_im2col_first_layers(copy.deepcopy(net))
    correct, total = torch.zeros((), dtype=torch.long, device=test.device), 0
    for batch in test.batches(batch_size):
        for x, y in pieces(*batch, "forward"):  # eval mode: every image alone, so pieces change nothing
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                correct += (net(x).argmax(dim=1) == y).sum()
            total += len(y)
    return 100.0 * int(correct) / max(total, 1)


def evaluate(training_set: TrainingSet, test: LabelledImages, spec: DatasetSpec, arch: str, protocol: EvalProtocol,
             seeds: list[int], device: torch.device, model_kwargs: dict | None = None,
             train: LabelledImages | None = None, cache_dir: Path | None = None,
             seeds_together: str = "auto", cuda_graphs: str = "off") -> EvalResult:
    """Train one ``arch`` network per seed on ``training_set`` and test each on ``test``.

    ``model_kwargs`` reach the architecture's builder (a NAS candidate's width, depth, norm, activation,
    pooling); ``train`` and ``cache_dir`` are needed only for sets whose hints ask for input preprocessing
    (ZCA); ``seeds_together`` (auto, on, off) says whether the K networks train as one stacked ensemble
    (:mod:`benchmark.ensemble`; ``auto``: on CUDA) or one after another; ``cuda_graphs`` (off, on) whether
    the ensemble's steps replay as CUDA graphs (:mod:`benchmark.cuda_graphs`; opt-in, CUDA only)."""
    training_set.validate(spec)
    test, preprocessing = preprocessed_test_set(training_set, test, train, cache_dir, device)
    protocol, epochs = effective_protocol(protocol, training_set)
    strategy = strategy_for(spec, protocol.dsa_strategy)
    together = trains_together(seeds_together, training_set, seeds, device)
    graphs = graphs_on(cuda_graphs, device)
    nets = [build_model(arch, spec, seed=derive_seed(seed, "eval-init", arch), device=device, **(model_kwargs or {}))
            for seed in seeds]
    start = time.perf_counter()
    how: dict = {"seeds_together": together, "cuda_graphs": False}
    if together:
        losses, steps = train_together(nets, training_set, protocol, epochs, strategy,
                                       generator(*seeds, "eval-train-together", device=device),
                                       generator(*seeds, "eval-train-together-families"), cuda_graphs=graphs)
        how.update(steps)
    else:
        streams = [generator(seed, "eval-train", device=device) for seed in seeds]
        losses = [train_network(net, training_set, protocol, epochs, strategy, rng)
                  for net, rng in zip(nets, streams, strict=True)]
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    accuracies = [top1_accuracy(net, test, protocol.test_batch_size, protocol.precision) for net in nets]
    test_s = time.perf_counter() - start
    return EvalResult(accuracies=accuracies, seeds=list(seeds), protocol=protocol.as_record(), train_seconds=train_s,
                      test_seconds=test_s, epochs=epochs, train_images=len(training_set),
                      extra={"final_train_loss": losses, "dsa_strategy": strategy, **how,
                             **({"preprocessing": preprocessing} if preprocessing else {})})
