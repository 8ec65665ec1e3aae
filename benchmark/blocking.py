"""Cache-sized pieces of a batch on a CPU.

A 128-channel activation of a 28×28 or 32×32 image is 0.4–0.5 MiB in fp32, so a batch of a few hundred images
streams every layer's output through main memory, between the convolution that writes it and the norm, ReLU and
pooling that read it (and, in training, the backward that reads it again). Splitting the batch into pieces of a
few MiB keeps that traffic in the last-level cache. On the project's CPU (2 cores of an AMD EPYC, 1 thread;
`benchmarks/RESULTS.md`) this made DM's compiled real forward 1.2–1.4× faster and, measured idle against whole
batches, the evaluator's training epoch 1.2–1.3× and its test pass 1.1× (MNIST) to 1.6× (CIFAR-10); with
other jobs sharing the memory bus the gains were larger (a 256-image step 1.45×, the MNIST test pass 1.65×).
The result equals the whole batch's up to float rounding for every network whose images do not interact
within a batch (no batch norm in train mode; the caller checks). On accelerators a piece is bounded only for
memory (DM's real forward), else the whole batch is one piece. Used by the evaluator (training steps, test
pass), DM's real-image embedding, DC/DSA's real-image gradients (per class, 256 MNIST images: 1.25–1.6×
in one process beside two jobs, `benchmarks/RESULTS.md` for the end-to-end iteration) and the training of
MTT's experts and DiM's pool (:mod:`benchmark.trajectories`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

CHUNK_PIXELS: dict[str, dict[str, int]] = {
    "cpu": {"forward": 32 * 32 * 32, "train": 16 * 32 * 32},
    "accelerator": {"forward": 2560 * 32 * 32},
}
"""Input pixels (height × width) per piece. On a CPU, cache-sized: ``forward`` for no-grad passes (32 CIFAR
images), ``train`` for a forward kept for its backward (16; its activations stay alive until the backward);
measured on MNIST and CIFAR-10 ConvNets, flat within ~10 % from 8 to 32 images per piece, slower from 48 up. On an
accelerator only no-grad forwards are bounded, for memory: all 10 classes × 256 CIFAR images at once (DM's real
images); a work without a bound there is one piece."""


def piece_size(images: Tensor, work: str) -> int:
    """Images per piece of ``images`` for ``work`` (``forward`` or ``train``) on their device."""
    bound = CHUNK_PIXELS["cpu" if images.device.type == "cpu" else "accelerator"].get(work)
    if bound is None:
        return max(1, len(images))
    return max(1, bound // (images.shape[-2] * images.shape[-1]))


def pieces(images: Tensor, labels: Tensor, work: str) -> Iterator[tuple[Tensor, Tensor]]:
    """``(images, labels)`` in pieces of :func:`piece_size`."""
    size = piece_size(images, work)
    return zip(torch.split(images, size), torch.split(labels, size), strict=True)


def train_pieces(x: Tensor, y: Tensor, split: bool) -> Iterator[tuple[Tensor, Tensor]]:
    """``(x, y)`` in ``train`` pieces where ``split``, else whole."""
    return pieces(x, y, "train") if split else iter([(x, y)])


def backward_in_pieces(net: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, y: Tensor,
                       split: bool, bf16: bool) -> Tensor:
    """Backpropagate the batch's mean loss, in cache-sized pieces where ``split``, each piece's mean weighted
    by its share of the batch so that the gradient is the whole batch's up to float rounding; a piece's
    activations are then still in cache for its backward. Returns the batch's mean loss, detached."""
    total = torch.zeros((), device=x.device)
    for xs, ys in train_pieces(x, y, split):
        share = len(xs) / len(x)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(net(xs), ys)
        (loss * share).backward()
        total += loss.detach().float() * share
    return total


def gradients_in_pieces(net: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, y: Tensor,
                        inputs: list[Tensor], split: bool) -> tuple[Tensor, ...]:
    """Gradients of the batch's mean loss with respect to ``inputs`` (no graph kept), summed over cache-sized
    pieces where ``split`` as :func:`backward_in_pieces` does, without touching any ``.grad``."""
    per_piece = [torch.autograd.grad(loss_fn(net(xs), ys) * (len(xs) / len(x)), inputs)
                 for xs, ys in train_pieces(x, y, split)]
    return tuple(sum(parts[1:], parts[0]) for parts in zip(*per_piece, strict=True))
