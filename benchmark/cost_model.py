"""A rough cost model, so that ``--dry-run`` can say what a grid will cost before anything is submitted.

Every figure is an **estimate** in seconds on the *reference device*: the project's 2-core AMD EPYC box,
torch using both threads. The actual cost of each finished cell is measured and kept in its record.

Unit costs, per image and per pixel (costs scale with H×W: ConvNet fwd+bwd on 256 images is 0.561 s at
28×28 and 0.908 s at 32×32, ../shared/notes/infra.md §3, i.e. 2.8 and 3.5 µs per image-pixel):

* ``TRAIN_PIXEL`` 3.6e-6 s: one SGD step of a ConvNet with DSA augmentation, per image-pixel — the
  reference ``evaluate_synset`` took 0.284 s per epoch of 100 MNIST images on 2 threads
  (../shared/notes/reference-runs.md §1).
* ``TEST_PIXEL`` 1.4e-6 s: a forward pass in inference mode (10,000 MNIST test images in 10.7 s, infra §3).
* ``REAL_PIXEL`` 1.6e-6 s: a DM-style augmented forward pass of real images whose features are matched
  (DM at IPC 10 on MNIST: 3.19 s per iteration of 10 × 256 real images on 2 threads, reference-runs §2).
* ``STEP_OVERHEAD`` 5e-3 s per optimizer step (a fit of 10- and 100-image steps on the 8×8 digits).

Architectures other than ConvNet cost ``ARCH_FACTOR`` times as much per image (fwd+bwd, 64 CIFAR-10
images, one thread, measured once here while the box was shared — ±30 %). On small images the ConvNet
shrinks with the pixels and the deep networks do not: ``SMALL_ARCH_FACTOR`` holds the ratios measured on
100 8×8 digits (2026-11-26, one thread, box shared), used up to ``SMALL_RESOLUTION`` pixels.

Methods: iterations per budget and image passes per iteration follow the reference repositories'
defaults (named per row). A method whose resolved hyper-parameters have an ``iterations`` field is
costed with that value instead. Methods missing from the table (third-party plugins) are costed like DM
and flagged ``uncalibrated``. Costs shared by all the cells of one (method, dataset) — MTT's expert
trajectories, a generator's pre-training, a coreset's feature net — are counted once per stage, in epochs
read from the cell's resolved hyper-parameters (a ``cpu-small`` buffer of 2 experts is costed as such).

On a GPU, divide by the card's speed-up over these two cores; ``GPU_SPEEDUP`` is an **assumption**
(not measured here: no GPU on the reference box).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmark.cells import DistillCell, EvalCell, Plan
from benchmark.data import dataset_spec
from benchmark.data.spec import DatasetSpec
from benchmark.distiller import get_distiller
from benchmark.protocol import EvalProtocol

TRAIN_PIXEL = 3.6e-6
TEST_PIXEL = 1.4e-6
REAL_PIXEL = 1.6e-6
STEP_OVERHEAD = 5e-3
BATCH = 256
NOMINAL_IPC = 10  # the IPC at which a generator method's (IPC-free) distillation is costed
GPU_SPEEDUP = 50.0  # assumption, see the module docstring
REFERENCE_THREADS = 2  # the reference device's torch threads: both of its cores

ARCH_FACTOR = {"alexnet": 1.9, "vgg11": 1.8, "vgg11_bn": 1.8, "resnet18": 6.3, "resnet18_bn": 6.3,
               "resnet18_ap": 6.3, "vit": 3.1, "mlp": 0.01}
SMALL_ARCH_FACTOR = {"alexnet": 2.0, "vgg11": 11.3, "vgg11_bn": 11.3, "resnet18": 7.6, "resnet18_bn": 7.4,
                     "resnet18_ap": 7.4, "vit": 18.1, "mlp": 0.01}
SMALL_RESOLUTION = 16


def arch_factor(arch: str, spec: DatasetSpec) -> float:
    """Cost of one image through ``arch`` relative to the ConvNet at the dataset's resolution."""
    table = SMALL_ARCH_FACTOR if spec.resolution <= SMALL_RESOLUTION else ARCH_FACTOR
    return table.get(arch, 1.0)


def dc_loops(ipc: int) -> tuple[int, int]:
    """(outer_loop, inner_loop) of DC/DSA, VICO-UoE/DatasetCondensation ``utils.py::get_loops``."""
    table = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}
    return table.get(ipc, (ipc, max(1, 500 // ipc)))


Passes = Callable[[int, int, dict[str, Any]], float]
"""(IPC, classes, resolved hyper-parameters) → training image-passes of one iteration; each reads the
preset's own batch sizes and loop counts where the cell has them (``cpu-small`` shrinks them)."""


def gradient_matching(ipc: int, classes: int, hp: dict[str, Any]) -> float:
    """DC: per outer loop, per class, ``batch_real`` real + the synthetic images through a create_graph
    backward (counted twice), then ``inner_loop`` epochs of network training on the synthetic set."""
    outer, inner = dc_loops(ipc)
    outer, inner = hp.get("outer_loop", outer), hp.get("inner_loop", inner)
    return outer * classes * (hp.get("batch_real", BATCH) + 2 * ipc) + outer * inner * ipc * classes


def distribution_matching(real_per_class: int, attention: float = 1.0) -> Passes:
    """DM/DataDAM: per class, an augmented real batch (forward only, ~0.45 of a training pass) and the
    synthetic images (fwd+bwd); ``attention`` scales for DataDAM's attention maps."""
    return lambda ipc, classes, hp: attention * classes * (
        hp.get("batch_real", real_per_class) * REAL_PIXEL / TRAIN_PIXEL + ipc)


def trajectory_matching(syn_steps: int) -> Passes:
    """MTT: ``syn_steps`` student steps on ``batch_syn`` synthetic images, back-propagated through (×3)."""
    return lambda ipc, classes, hp: 3 * hp.get("syn_steps", syn_steps) * min(
        ipc * classes, hp.get("batch_syn") or BATCH)


def generator_matching(ipc: int, classes: int, hp: dict[str, Any]) -> float:
    """D2M: per class, ``batch_real`` real images (forward only) and ``batch_syn`` generated ones through the
    feature net and the generator (fwd+bwd of both ≈ 2 passes)."""
    real = hp.get("batch_real", 128)
    return classes * (real * REAL_PIXEL / TRAIN_PIXEL + 2 * (hp.get("batch_syn") or real))


Epochs = Callable[[dict[str, Any], int], float]
"""(resolved hyper-parameters of a cell, training images) → epochs over the real training split, so a
preset's own numbers of experts, GAN epochs or pre-training updates are what get costed, not the paper's."""


def fixed_epochs(epochs: float) -> Epochs:
    return lambda hp, images: epochs


@dataclass(frozen=True)
class MethodCost:
    """How a method spends compute: iterations per budget, image passes per iteration, shared set-up."""

    iterations: dict[str, int]
    passes: Passes
    setup_epochs: Epochs = fixed_epochs(0.0)  # computed once per (setup, dataset, budget) and cached
    per_cell_epochs: Epochs = fixed_epochs(0.0)  # in every cell
    source: str = ""
    setup: str = ""  # name of the cached set-up when methods share one (D2M's pre-trained generator)


def no_passes(ipc: int, classes: int, hp: dict[str, Any]) -> float:
    return 0.0


def gan_pretraining(hp: dict[str, Any], images: int) -> float:
    """D2M's generator pre-training: per G update, G's batch plus ``d_steps`` D updates on a real and a
    generated batch."""
    return hp["pretrain_iterations"] * hp["pretrain_batch"] * (1 + 2 * hp["pretrain_d_steps"]) / images


def dim_setup(hp: dict[str, Any], images: int) -> float:
    """DiM's cached stages: the GAN (G + critic with gradient penalty ≈ 3 passes per epoch) and the pool's
    trajectories (each network trains ``pool_batches_per_step`` epochs; ResNets cost ``ARCH_FACTOR`` more)."""
    pool = sum(ARCH_FACTOR.get(arch, 1.0) for arch in hp["pool"]) * hp["pool_models"]
    return 3 * hp["gan_epochs"] + pool * hp["pool_batches_per_step"]


D2M_COST = MethodCost(
    {"paper": 5000, "cpu-small": 100}, generator_matching,
    setup_epochs=gan_pretraining, setup="d2m-generator",
    source="d2m/distill.py presets: GAN pre-training (pretrain_iterations × batch × (1 + 2 d_steps) images), "
           "then matching of batch_real real vs batch_syn generated images per class")
"""Shared by D2M and its ablations, which read one cached pre-trained generator per dataset."""

FEATURE_NET = dict(setup_epochs=lambda hp, images: hp["feature_epochs"], setup="feature-net",
                   per_cell_epochs=fixed_epochs(REAL_PIXEL / TRAIN_PIXEL),
                   source="baselines/coresets.py: a cached feature net (feature_epochs), one embedding pass per cell "
                          "(an upper bound: a process running several cells of a dataset embeds once)")

METHOD_COSTS: dict[str, MethodCost] = {
    "random": MethodCost({"paper": 1, "cpu-small": 1}, no_passes, source="sampling only"),
    "full": MethodCost({"paper": 1, "cpu-small": 1}, no_passes, source="nothing to distil"),
    "herding": MethodCost({"paper": 1, "cpu-small": 1}, no_passes, **FEATURE_NET),
    "kcenter": MethodCost({"paper": 1, "cpu-small": 1}, no_passes, **FEATURE_NET),
    "dc": MethodCost({"paper": 1000, "cpu-small": 20}, gradient_matching,
                     source="DatasetCondensation main.py: Iteration 1000, batch_real 256, get_loops"),
    "dsa": MethodCost({"paper": 1000, "cpu-small": 20}, lambda ipc, k, hp: 1.1 * gradient_matching(ipc, k, hp),
                      source="DatasetCondensation main.py --method DSA: as DC, plus siamese augmentation"),
    "dm": MethodCost({"paper": 20000, "cpu-small": 100}, distribution_matching(256),
                     source="DatasetCondensation main_DM.py: Iteration 20000, batch_real 256"),
    "datadam": MethodCost({"paper": 20000, "cpu-small": 100}, distribution_matching(64, attention=1.3),
                          source="DataDAM main_DataDAM.py: Iteration 20000, batch_real 64"),
    "mtt": MethodCost({"paper": 5000, "cpu-small": 50}, trajectory_matching(20),
                      setup_epochs=lambda hp, images: hp["num_experts"] * hp["train_epochs"],
                      source="mtt-distillation distill.py: Iteration 5000, syn_steps 20; buffer.py: "
                             "num_experts × train_epochs (100 × 50 in the paper)"),
    "dim": MethodCost({"paper": 1, "cpu-small": 1}, no_passes, setup_epochs=dim_setup,
                      per_cell_epochs=lambda hp, images: 5 * hp["match_epochs"],
                      source="DiM gen_condense.py + pool_match.py: GAN epochs and pool cached; matching epochs "
                             "≈ 5 passes (GAN step + matching network on real and generated)"),
    "d2m": D2M_COST,
    "d2m-em": D2M_COST,
    "d2m-pm": D2M_COST,
    "d2m-gen": dataclasses.replace(D2M_COST, iterations={"paper": 0, "cpu-small": 0},
                                   source="D2M's pre-training only"),
    "d2m-scratch": dataclasses.replace(D2M_COST, setup_epochs=fixed_epochs(0.0), setup="",
                                       source="D2M without pre-training"),
}
UNCALIBRATED = MethodCost({"paper": 20000, "cpu-small": 100}, distribution_matching(256), source="costed like DM")


def method_cost(method: str) -> MethodCost:
    return METHOD_COSTS.get(method, UNCALIBRATED)


def pixels(spec: DatasetSpec) -> int:
    return spec.resolution * spec.resolution


def epoch_seconds(spec: DatasetSpec, images: int, factor: float = 1.0) -> float:
    """One training epoch over ``images`` images in batches of 256."""
    return images * pixels(spec) * TRAIN_PIXEL * factor + math.ceil(images / BATCH) * STEP_OVERHEAD


def train_images(spec: DatasetSpec) -> int:
    return spec.train_size or 50_000


def distill_seconds(cell: DistillCell) -> float:
    """Estimated seconds of one distillation cell, without the shared set-up (see :func:`setup_seconds`)."""
    spec = dataset_spec(cell.dataset)
    cost = method_cost(cell.method)
    iterations = cost.iterations.get(cell.budget, cost.iterations["paper"])
    if iterations:  # a method that runs no loop (d2m-gen) may still carry its parent's ``iterations`` field
        iterations = cell.hparams.get("iterations", iterations)
    if cell.max_iterations:
        iterations = min(iterations, cell.max_iterations)
    ipc = cell.ipc or NOMINAL_IPC
    per_iteration = cost.passes(ipc, spec.num_classes, cell.hparams) * pixels(spec) * TRAIN_PIXEL
    images = train_images(spec)
    return iterations * per_iteration + cost.per_cell_epochs(cell.hparams, images) * epoch_seconds(spec, images)


def setup_seconds(cell: DistillCell) -> float:
    """Estimated seconds of what ``cell``'s method computes once per dataset and caches for all its cells."""
    spec = dataset_spec(cell.dataset)
    images = train_images(spec)
    return method_cost(cell.method).setup_epochs(cell.hparams, images) * epoch_seconds(spec, images)


def setup_cells(cells: list[DistillCell]) -> list[DistillCell]:
    """One representative cell per distinct cached set-up (methods and IPCs sharing one are counted once)."""
    return list({(method_cost(c.method).setup or c.method, c.dataset, c.budget): c for c in cells}.values())


def eval_seconds(cell: EvalCell) -> float:
    """Estimated seconds to train and test the protocol's networks on one artifact at one IPC."""
    spec = dataset_spec(cell.distill.dataset)
    protocol, factor = cell.protocol, arch_factor(cell.arch, spec)
    if get_distiller(cell.distill.method).ipc_independent:
        images = train_images(spec)
        epochs = EvalProtocol(**protocol).whole_dataset_epochs(images)
    else:
        images, epochs = (cell.ipc or NOMINAL_IPC) * spec.num_classes, protocol["epochs"]
    test = (spec.test_size or 10_000) * pixels(spec) * TEST_PIXEL * factor
    return protocol["models"] * (epochs * epoch_seconds(spec, images, factor) + test)


@dataclass
class StageEstimate:
    cells: int
    seconds: float
    uncalibrated: set[str] = field(default_factory=set)

    def hours(self, device: str = "cpu") -> float:
        return self.seconds / 3600 / (GPU_SPEEDUP if device == "cuda" else 1.0)


def format_hours(hours: float) -> str:
    """``0.05`` → ``3 device-min``, ``12.3`` → ``12.3 device-h``, ``45678`` → ``45,678 device-h``."""
    if hours < 1:
        return f"{hours * 60:.2g} device-min"
    return f"{hours:.3g} device-h" if hours < 1000 else f"{hours:,.0f} device-h"


def estimate(plan: Plan) -> dict[str, StageEstimate]:
    """Estimated reference-device seconds of each stage of ``plan`` (pass a pending plan for what is left)."""
    distill = StageEstimate(len(plan.distill_cells), sum(map(distill_seconds, plan.distill_cells)))
    distill.seconds += sum(map(setup_seconds, setup_cells(plan.distill_cells)))
    evals = StageEstimate(len(plan.eval_cells), sum(map(eval_seconds, plan.eval_cells)))
    distill.uncalibrated = {c.method for c in plan.distill_cells if c.method not in METHOD_COSTS}
    return {"distill": distill, "eval": evals}
