"""K evaluation networks trained together: stacked parameters, one vmapped step per minibatch.

Why (DESIGN §4): a distilled set is tiny — IPC 10 on CIFAR-10 is a single batch of 100 images — so on a
GPU one network's step leaves the card idle between kernel launches. Stacking the K seeds' parameters
(``torch.func.stack_module_state``) and vmapping the functional forward trains all K with one launch
sequence. On the project's 2-core CPU the plain loop of :func:`benchmark.evaluate.train_network` wins
(vmap was 2.8× slower there), so ``seeds_together="auto"`` takes this path on CUDA only;
``benchmarks/eval_speed.py`` measures both, side by side.

The protocol is the loop's (VICO-UoE/DatasetCondensation ``utils.py::evaluate_synset``): each network
starts from the initialisation its seed gives in the loop, draws its own shuffle every epoch and its own
DSA magnitudes per image, and the protocol's SGD and schedule (:meth:`EvalProtocol.optimizer`,
:meth:`EvalProtocol.schedule`) act element-wise on the stacked tensors — K independent optimisers. Two
things are shared by the K networks of one step: the random stream, and the DSA family drawn for the step
(one batched augmentation call; drawn from a CPU generator so a CUDA step never waits for the host). Every
network still sees the reference's augmentation distribution, so results equal the loop's in
distribution, not bit for bit; each record says which path ran (``seeds_together``). On CUDA the
ensemble's steps can also replay as CUDA graphs (``cuda_graphs``, opt-in; :mod:`benchmark.cuda_graphs`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

from benchmark.augment import dsa, dsa_indexed, family_index
from benchmark.cuda_graphs import GraphedSteps
from benchmark.distiller import SyntheticSet, TrainingSet
from benchmark.errors import BenchmarkError, invalid_value
from benchmark.protocol import EvalProtocol

SEEDS_TOGETHER = ("auto", "on", "off")


def together_on(choice: str, device: torch.device) -> bool:
    """The device rule of ``seeds_together``: ``on`` always, ``auto`` on CUDA, ``off`` never."""
    if choice not in SEEDS_TOGETHER:
        raise invalid_value("seeds_together", choice, ", ".join(SEEDS_TOGETHER))
    return choice == "on" or (choice == "auto" and device.type == "cuda")


def trains_together(choice: str, training_set: TrainingSet, seeds: list[int], device: torch.device) -> bool:
    """Whether the K seeds train as one stacked ensemble (:func:`together_on`).

    Only a synthetic set qualifies (a whole real dataset trains one network at a time: K copies of every
    batch would not pay), and only when there are several seeds."""
    return together_on(choice, device) and isinstance(training_set, SyntheticSet) and len(seeds) > 1


def per_network_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of each network over its own batch: (K, B, classes) logits → (K,) losses.

    ``targets`` are (K, B) class indices or (K, B, classes) probability vectors (soft labels)."""
    if targets.ndim == 3:
        return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean(dim=1)
    k, b = targets.shape
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(k, b).mean(dim=1)


def train_together(nets: list[nn.Module], training_set: SyntheticSet, protocol: EvalProtocol, epochs: int,
                   strategy: str, rng: torch.Generator, family_rng: torch.Generator,
                   cuda_graphs: bool = False) -> tuple[list[float], dict]:
    """Train ``nets`` in place as one stacked ensemble.

    Returns each network's last-epoch mean training loss, and how the steps ran (``cuda_graphs``: replayed
    as CUDA graphs, :mod:`benchmark.cuda_graphs`; the DSA family is then applied through
    :func:`~benchmark.augment.dsa_indexed`, drawn from the same host stream)."""
    params, buffers = stack_module_state(nets)
    template = copy.deepcopy(nets[0]).to("meta")
    template.train()

    def forward(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(template, (p, b), (x,))

    batched = torch.vmap(forward, randomness="different")
    optimizer = protocol.optimizer(params.values())  # element-wise, so K independent optimisers
    bf16 = protocol.precision == "bf16"
    k, n, device = len(nets), len(training_set), training_set.x.device
    totals = torch.zeros(k, device=device)  # summed on the device: no sync per step

    def step(x: Tensor, y: Tensor, augment: Callable[[Tensor], Tensor]) -> None:
        x = augment(x)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=False):
            logits = batched(params, buffers, x.unflatten(0, (k, -1)))
        losses = per_network_loss(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # network i's parameters get exactly the gradient of its own loss
        optimizer.step()
        totals.add_(losses.detach() * y.shape[1])

    graphed = StaticBatches(training_set, k, strategy, rng, step, optimizer) if cuda_graphs else None
    try:
        for epoch in range(epochs):
            protocol.schedule(optimizer, epoch, epochs)
            totals.zero_()
            orders = torch.rand(k, n, generator=rng, device=rng.device).argsort(dim=1).to(device)
            for start in range(0, n, protocol.batch_size):
                idx = orders[:, start : start + protocol.batch_size]
                if graphed:
                    graphed(idx, family_index(strategy, family_rng))
                else:
                    step(training_set.x[idx].flatten(0, 1), training_set.y[idx],
                         lambda x: dsa(x, strategy, rng, family_generator=family_rng))
        last = (totals / n).tolist()
    finally:
        if graphed:
            graphed.steps.release()
    if any(v != v for v in last):
        raise BenchmarkError("evaluation training diverged (loss is NaN)")
    unstack(nets, params, buffers)
    how = {"cuda_graphs": graphed is not None}
    if graphed:
        how.update(graph_captures=graphed.steps.captures, eager_steps=graphed.steps.eager_steps)
    return last, how


class StaticBatches:
    """The ensemble step on fixed input tensors, one per batch length, replayed through :class:`GraphedSteps`.

    Each call copies the batch the shuffle picked and the host-drawn DSA family into those tensors, then
    runs the graph of that batch length."""

    def __init__(self, training_set: SyntheticSet, k: int, strategy: str, rng: torch.Generator,
                 step: Callable[[Tensor, Tensor, Callable[[Tensor], Tensor]], None],
                 optimizer: torch.optim.Optimizer) -> None:
        self.training_set, self.k = training_set, k
        self.family = torch.zeros((), dtype=torch.long, device=training_set.x.device)
        self.inputs: dict[int, tuple[Tensor, Tensor]] = {}

        def static_step(b: int) -> None:
            x, y = self.inputs[b]
            step(x, y, lambda images: dsa_indexed(images, strategy, self.family, rng))

        self.steps = GraphedSteps(static_step, optimizer, rng)

    def __call__(self, idx: Tensor, family: int | None) -> None:
        b = idx.shape[1]
        if b not in self.inputs:
            x, y = self.training_set.x, self.training_set.y
            self.inputs[b] = (x.new_empty((self.k * b, *x.shape[1:])), y.new_empty((self.k, b, *y.shape[1:])))
        x, y = self.inputs[b]
        x.copy_(self.training_set.x[idx].flatten(0, 1))
        y.copy_(self.training_set.y[idx])
        self.family.fill_(family or 0)
        self.steps(b)


@torch.no_grad()
def unstack(nets: list[nn.Module], params: dict[str, Tensor], buffers: dict[str, Tensor]) -> None:
    """Copy network ``i``'s slice of the stacked tensors back into ``nets[i]``."""
    for i, net in enumerate(nets):
        for name, tensor in [*net.named_parameters(), *net.named_buffers()]:
            tensor.copy_((params if name in params else buffers)[name][i])
