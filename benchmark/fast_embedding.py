"""Embeddings of images under a frozen, freshly drawn network, as fast as the device allows.

DM draws a new random network every iteration, embeds 256 real images per class through it without a graph
(~85 % of an iteration on a CPU) and its synthetic images with a graph back to their pixels. The fast paths
below were each kept because ``benchmarks/distill_speed.py`` or a side-by-side probe measured it winning on
the project's CPU (``benchmarks/RESULTS.md``, "Distillation"); all equal the plain ``net.embed`` up to float
rounding:

* **channels-last** (CPU): oneDNN's NHWC convolutions and pooling, with a single-input-channel first layer
  as one matrix product (:class:`Im2colConv2d`), run through a template of the architecture whose weights
  are arguments (``functional_call``), so a fresh network costs no copy;
* **compiled** (``compile``): that template call through ``torch.compile``. The weights are *inputs* of the
  graph, so every freshly drawn network reuses one compilation per input shape and grad mode. Inductor fuses
  group norm, ReLU and pooling into a few loops over the channels-last activations (the eager channels-last
  group norm is 3–10× slower than the NCHW one here) and compiles the synthetic images' backward too. It
  costs compilation once per process (tens of seconds cold, seconds from inductor's on-disk cache) and
  needs a C++ compiler, so ``auto`` turns it on only on a CPU, for distillations of at least
  :data:`AUTO_MIN_ITERATIONS` iterations, where a compiler is on PATH. On CUDA ``auto`` leaves it off: on an
  H200 the compiled DM iteration at MNIST IPC 10 was no faster (0.026 against 0.025 s; 24 s to compile), only
  lighter (1.7 against 2.6 GiB; `benchmarks/RESULTS.md`); ``on`` still compiles, through Triton.

Networks with batch norm in train mode mix a batch's images and update running statistics: they take the
plain forward, in one piece (the reference's ``ConvNetBN`` branch).
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from benchmark.blocking import piece_size
from benchmark.errors import BenchmarkError, first_line, invalid_value
from benchmark.matching import has_batchnorm

COMPILE = ("auto", "on", "off")
AUTO_MIN_ITERATIONS = 100
"""``auto`` compiles only distillations at least this long: compilation costs ~10–35 s once and saves ~3 s per
DM iteration on MNIST on the project's CPU, so the ``cpu-small`` presets' 20 short iterations (64 real images
per class) would spend more compiling than they save."""

Forward = Callable[[dict[str, Tensor], Tensor], Tensor]
"""The template's forward: (weights by parameter name, images) → embeddings."""

def cpp_compiler() -> str | None:
    """The C++ compiler inductor would call for CPU code, if one is on PATH."""
    return next((found for name in ("g++", "c++", "clang++") if (found := shutil.which(name))), None)


def compile_wanted(choice: str, device: torch.device, iterations: int) -> bool:
    """The rule of ``compile``: ``on`` always (refused without a C++ compiler for a CPU), ``off`` never,
    ``auto`` on a CPU for distillations of at least :data:`AUTO_MIN_ITERATIONS` iterations with a compiler."""
    if choice not in COMPILE:
        raise invalid_value("compile", choice, ", ".join(COMPILE))
    if choice == "off":
        return False
    if device.type == "cpu" and cpp_compiler() is None:
        if choice == "on":
            raise BenchmarkError("compile=on needs a C++ compiler on PATH (g++, c++ or clang++) for torch.compile's "
                                 "CPU code; install one or use compile=off")
        return False
    return choice == "on" or (device.type == "cpu" and iterations >= AUTO_MIN_ITERATIONS)


class _Embed(nn.Module):
    """``net.embed`` as a module's forward, so that ``functional_call`` can run it with other weights."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net.embed(x)


class Im2colConv2d(nn.Conv2d):
    """A convolution over a single input channel as one matrix product of unfolded patches, written
    channels-last: oneDNN's direct convolution runs the 1 → 128-channel first layer of the MNIST ConvNet at
    ~4 GFLOP/s on the project's CPU; with this product the eager no-grad forward of 2,560 real images took
    10.1 instead of 12.4 CPU s (1 thread, side by side). Same parameters, same values up to rounding."""

    def forward(self, x: Tensor) -> Tensor:
        n, (kh, kw), (ph, pw), (sh, sw) = x.shape[0], self.kernel_size, self.padding, self.stride
        height, width = (x.shape[2] + 2 * ph - kh) // sh + 1, (x.shape[3] + 2 * pw - kw) // sw + 1
        patches = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # (n, kh·kw, h·w)
        flat = patches.transpose(1, 2).reshape(n * height * width, -1)
        kernel = self.weight.reshape(self.out_channels, -1).t()
        out = flat @ kernel if self.bias is None else torch.addmm(self.bias, flat, kernel)
        return out.view(n, height, width, self.out_channels).permute(0, 3, 1, 2)


def with_im2col_first_layers(net: nn.Module) -> nn.Module:
    """``net`` with its plain single-input-channel convolutions turned into :class:`Im2colConv2d`, in place
    (same parameters, same names)."""
    for module in net.modules():
        if (type(module) is nn.Conv2d and module.in_channels == 1 and module.groups == 1
                and module.padding_mode == "zeros" and module.dilation == (1, 1) and isinstance(module.padding, tuple)):
            module.__class__ = Im2colConv2d
    return net


def fast_template(net: nn.Module, on_cpu: bool) -> _Embed:
    """A copy of ``net``'s structure to run other networks' weights through, with :class:`Im2colConv2d`
    first layers on a CPU."""
    template = _Embed(copy.deepcopy(net))
    return with_im2col_first_layers(template) if on_cpu else template


class FastEmbedder:
    """``embedder(net, images)``: ``net.embed(images)`` through the fast paths. Images that do not require
    grad (real ones) are embedded without a graph, in the pieces of :func:`benchmark.blocking.piece_size`
    (cache-sized on a CPU: 3.8–4.3 CPU s for 2,560 MNIST images against 4.9–5.7 in one-class chunks,
    `benchmarks/RESULTS.md`; memory-bounded on an accelerator); images that do (synthetic ones) in one forward
    whose graph reaches them: compiled when compiling, else the plain forward (eager channels-last measured no
    faster with a backward: 0.97–1.22 vs 0.96–1.17 CPU s for 100 MNIST images). One embedder serves the freshly
    drawn networks of one architecture: it keeps their structure, and the compilation."""

    def __init__(self, compiled: bool) -> None:
        self.compiled = compiled
        self._template: _Embed | None = None
        self._forward: Forward | None = None

    def describe(self) -> str:
        """How the forwards ran, for the artifact's record."""
        return "compiled" if self.compiled else "eager"

    def __call__(self, net: nn.Module, x: Tensor) -> Tensor:
        graph = x.requires_grad
        if has_batchnorm(net) or (graph and not self.compiled):
            with torch.set_grad_enabled(graph):
                return net.embed(x)
        if self._forward is None:
            self._template = fast_template(net, x.device.type == "cpu")
            self._forward = self._compiled_call(torch.compile(self._run_template, dynamic=False, fullgraph=True)) \
                if self.compiled else self._run_template
        tensors = {**dict(net.named_parameters()), **dict(net.named_buffers())}  # autograd links kept
        weights = {f"net.{name}": _layout(t) for name, t in tensors.items()}
        if graph:
            return self._forward(weights, _layout(x))
        with torch.no_grad():
            parts = torch.split(_layout(x), piece_size(x, "forward"))
            return torch.cat([self._forward(weights, part) for part in parts])

    def _run_template(self, weights: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(self._template, weights, (x,))

    @staticmethod
    def _compiled_call(compiled: Forward) -> Forward:
        """``compiled``, with its failures (which surface deep inside dynamo/inductor) as one line naming the
        switch that avoids them."""
        def call(weights: dict[str, Tensor], x: Tensor) -> Tensor:
            try:
                return compiled(weights, x)
            except Exception as error:
                raise BenchmarkError(f"compile: torch.compile of the embedding forward failed "
                                     f"({first_line(error)[:200]}); rerun with compile=off") from error
        return call


def _layout(t: Tensor) -> Tensor:
    """Channels-last for 4-D tensors on a CPU (images, convolution weights); anything else unchanged."""
    return t.contiguous(memory_format=torch.channels_last) if t.device.type == "cpu" and t.ndim == 4 else t
