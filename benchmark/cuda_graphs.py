"""Training steps replayed as CUDA graphs: one capture per step shape, then one launch per step.

Why (issue 7, ``benchmarks/RESULTS.md``): a distilled set is one or two small batches, so on a GPU the
evaluation step can be bound by kernel launches and Python dispatch rather than arithmetic. A captured
graph replays the whole step — augmentation, forward, backward, SGD — as one launch. Measured on an H100:
at IPC 1 that took five stacked CIFAR-10 networks from 3.66× to 8.75× the reference evaluation; at IPC 10
and 50 the stacked step is already compute-bound and the graphs gained nothing.

What a captured step must respect: it reads its inputs from, and writes its outputs into, tensors that
outlive it (the caller refills them before each replay); its randomness comes from one CUDA generator,
registered with every graph so that each replay draws fresh numbers from the seeded stream; it makes no
host decision that changes between replays (the caller passes such choices as device tensors). The SGD lr
is baked into a capture and the momentum buffers are addressed by pointer, so graphs are keyed by the lr
and all dropped whenever the optimizer's state is empty (just built, or cleared by the schedule's restart):
the next step makes new buffers. The first step of each key runs eagerly on a side stream, as the CUDA
graph documentation asks (cuDNN plans and lazily built optimizer state exist before capture); it is a real
training step, not a discarded warm-up.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import torch

from benchmark.errors import BenchmarkError, invalid_value

CUDA_GRAPHS = ("off", "on")
"""Opt-in: on an H100 the graphs won only at IPC 1 (``benchmarks/RESULTS.md``), and one capture failed there."""


def graphs_on(choice: str, device: torch.device) -> bool:
    """``on``: replay the ensemble's steps as CUDA graphs (a CUDA device only); ``off``: never."""
    if choice not in CUDA_GRAPHS:
        raise invalid_value("cuda_graphs", choice, ", ".join(CUDA_GRAPHS))
    if choice == "on" and device.type != "cuda":
        raise BenchmarkError(f"cuda_graphs=on needs a CUDA device, not {device}; use cuda_graphs=off")
    return choice == "on"


class GraphedSteps:
    """Run ``step(shape)`` eagerly the first time per key, capture it the second, replay it afterwards."""

    def __init__(self, step: Callable[[Hashable], None], optimizer: torch.optim.Optimizer,
                 generator: torch.Generator) -> None:
        self.step = step
        self.optimizer = optimizer
        self.generator = generator
        self.device = generator.device
        self.graphs: dict[Hashable, torch.cuda.CUDAGraph] = {}
        self.warm: set[Hashable] = set()
        self.pool = None  # the first live graph's memory pool, shared by the others: they never run concurrently
        self.side = torch.cuda.Stream(self.device)
        self.captures = 0
        self.eager_steps = 0

    def __call__(self, shape: Hashable) -> None:
        if not self.optimizer.state:  # new momentum buffers come with the next step
            self.release()
        key = (shape, tuple(group["lr"] for group in self.optimizer.param_groups))
        graph = self.graphs.get(key)
        if graph is None:
            graph = self._warm_up_or_capture(key, shape)
        if graph is not None:
            graph.replay()

    def release(self) -> None:
        """Destroy the graphs now. Left to the garbage collector, a graph can be destroyed in the middle of
        a later capture, which that capture does not survive."""
        self.graphs.clear()
        self.warm.clear()
        self.pool = None

    def _warm_up_or_capture(self, key: Hashable, shape: Hashable) -> torch.cuda.CUDAGraph | None:
        current = torch.cuda.current_stream(self.device)
        self.side.wait_stream(current)
        graph = None
        with torch.cuda.stream(self.side):
            if key not in self.warm:
                self.step(shape)
                self.warm.add(key)
                self.eager_steps += 1
            else:
                graph = torch.cuda.CUDAGraph()
                graph.register_generator_state(self.generator)
                graph.capture_begin(pool=self.pool)
                try:
                    self.step(shape)
                finally:
                    graph.capture_end()
                self.graphs[key] = graph
                self.pool = self.pool or graph.pool()
                self.captures += 1
        current.wait_stream(self.side)
        return graph
