"""D2M distillation (Sajedi et al., "Data-to-Model Distillation: Data-Efficient Learning Framework", ECCV
2024) and its ablations, registered as methods.

The real dataset is distilled into the parameters of a pre-trained class-conditional generator G(z, y)
(:mod:`d2m.generator`, :mod:`d2m.pretrain`) by minimising L = L_EM + λ·L_PM (:mod:`d2m.losses`) between
real and generated batches of every class; the trained G then samples a training set of any IPC
(:mod:`d2m.artifact`), so a new IPC costs one sampling, not one distillation.

The paper's method section is not available to the project. Where it is silent these are the project's
documented **assumptions**, each a named hyper-parameter (DESIGN §5):

* the feature network φ is a randomly initialised ``feature_arch`` ("convnet", the evaluation family),
  drawn afresh every iteration and frozen — the DM/DataDAM lineage (``main_DM.py``, ``main_DataDAM.py``);
* λ = ``task_balance`` = 10 and T = ``temperature`` = 4;
* DSA (``dsa_strategy``; flip dropped for digit datasets) is applied siamese-style: one draw per class
  shared by its real and generated batch, as DM/DataDAM do per class;
* every generator weight is trained, with Adam (``lr_generator``);
* ``batch_real`` = 128 real images per class and as many generated ones (``batch_syn`` = 0 means "the
  same as ``batch_real``");
* the generator stays in training mode while distilled, so batch norm normalises each iteration's
  class-balanced generated batch as it did in pre-training; sampling uses the running statistics.

Ablations (methods of their own, so any grid can show what each part contributes): ``d2m-gen`` samples
the pre-trained generator without distillation; ``d2m-em`` and ``d2m-pm`` distil with one loss only;
``d2m-scratch`` distils into a randomly initialised generator (no pre-training).

Budget presets, per dataset family: ``paper`` (full iterations, meant for a GPU) and ``cpu-small``
(digits/MNIST scale on a laptop CPU). Iteration counts, generator widths and pre-training lengths are the
project's choices (the paper's are not known to it); the table below is the one place they live.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from benchmark.augment import DEFAULT_STRATEGY, dsa_siamese, parse_strategy, strategy_for
from benchmark.data.spec import DatasetSpec
from benchmark.distiller import Distiller, DistillTask, register_distiller
from benchmark.errors import invalid_value
from benchmark.iterate import run_iterations
from benchmark.matching import ActivationRecorder, random_feature_net, real_batches_by_class
from benchmark.models import list_models
from benchmark.seeding import derive_seed
from benchmark.synthetic import class_labels, require_positive_ipc
from d2m.artifact import GeneratorArtifact
from d2m.generator import Generator, GeneratorConfig, architecture_for, build_generator
from d2m.losses import embedding_matching_loss, prediction_matching_loss
from d2m.pretrain import PretrainConfig, StartingGenerator, load_generator_weights, pretrained_generator

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.SiLU, nn.Sigmoid, nn.GELU)  # what L_EM reads of any feature_arch


@dataclass(frozen=True)
class D2MHparams:
    """D2M's hyper-parameters; defaults are the ``paper`` preset of the CIFAR family."""

    # --- distillation ---
    iterations: int = 5000  # project choice (paper's unknown); DM/DataDAM run 20k pixel-update iterations
    lr_generator: float = 1e-4  # project choice: Adam, a fine-tuning rate for a pre-trained GAN
    temperature: float = 4.0  # project default T (the paper studies T; value assumed)
    task_balance: float = 10.0  # project default λ (the paper studies λ; value assumed)
    batch_real: int = 128  # real images per class per iteration (DataDAM/DM use 128/256)
    batch_syn: int = 0  # generated images per class per iteration; 0 = batch_real (assumption), so a sweep
    #                     of batch_real moves both batches, as the paper's batch-size study does
    feature_arch: str = "convnet"  # random feature network, re-drawn every iteration (DM/DataDAM)
    dsa_strategy: str = DEFAULT_STRATEGY  # DSA reference strategy; flip dropped for digits
    checkpoint_every: int = 100  # iterations between resume checkpoints (distillation and pre-training)
    # --- the generator and its pre-training ---
    generator_weights: str = ""  # path to user weights; empty = pre-train (cached) on the training split
    generator_width: int = 64  # BigGAN-PyTorch's CIFAR G_ch = 64
    pretrain_iterations: int = 20000  # generator updates of the conditional GAN (project choice)
    pretrain_batch: int = 64  # BigGAN-PyTorch CIFAR batch_size 50, rounded
    pretrain_lr_generator: float = 2e-4  # BigGAN-PyTorch CIFAR G_lr
    pretrain_lr_discriminator: float = 2e-4  # BigGAN-PyTorch CIFAR D_lr
    pretrain_d_steps: int = 2  # D updates per G update (BigGAN CIFAR uses 4; halved for cost)
    pretrain_seed: int = 0  # fixed per config, NOT the distillation seed: all seeds share one generator

    def __post_init__(self) -> None:
        positive_ints = ("batch_real", "checkpoint_every", "generator_width", "pretrain_iterations",
                         "pretrain_batch", "pretrain_d_steps")
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise invalid_value(name, getattr(self, name), "a positive integer")
        for name in ("iterations", "batch_syn"):
            if getattr(self, name) < 0:
                raise invalid_value(name, getattr(self, name), "a non-negative integer")
        for name in ("lr_generator", "temperature", "pretrain_lr_generator", "pretrain_lr_discriminator"):
            if not getattr(self, name) > 0:
                raise invalid_value(name, getattr(self, name), "a positive number")
        if not self.task_balance >= 0:
            raise invalid_value("task_balance", self.task_balance, "a non-negative number")
        if self.feature_arch not in list_models():
            raise invalid_value("feature_arch", self.feature_arch,
                                f"a registered architecture ({', '.join(list_models())})")
        parse_strategy(self.dsa_strategy)

    @property
    def generated_per_class(self) -> int:
        return self.batch_syn or self.batch_real

    def pretrain_config(self, iterations: int) -> PretrainConfig:
        return PretrainConfig(width=self.generator_width, iterations=iterations, batch_size=self.pretrain_batch,
                              lr_generator=self.pretrain_lr_generator, lr_discriminator=self.pretrain_lr_discriminator,
                              d_steps=self.pretrain_d_steps, seed=self.pretrain_seed,
                              checkpoint_every=self.checkpoint_every)


PAPER = D2MHparams()
# cpu-small: a width-32 random ConvNet as φ (16× fewer FLOPs than width 128: on MNIST one iteration at 16
# images per class costs ~2 s instead of ~9 s on one of the project's CPU cores), 16 images per class,
# 100 iterations; a GAN pre-training of a few hundred generator updates at batch 32 with one D step and a
# 5× larger rate (conditioning must appear within that budget).
CPU_SMALL = dataclasses.replace(PAPER, iterations=100, lr_generator=2e-4, batch_real=16,
                                feature_arch="convnet_w32", pretrain_batch=32, pretrain_lr_generator=1e-3,
                                pretrain_lr_discriminator=1e-3, pretrain_d_steps=1)
# Per-family presets. ``paper``: GPU budgets; ``cpu-small``: the smoke grid and CPU evidence runs (their
# measured cost on the project's 2-core machine is in experiments/d2m-evidence.md).
PRESETS: dict[str, dict[str, D2MHparams]] = {
    "paper": {
        "digits": dataclasses.replace(PAPER, iterations=2000, generator_width=32, pretrain_iterations=5000),
        "mnist": dataclasses.replace(PAPER, generator_width=32, pretrain_iterations=10000),
        "cifar": PAPER,
        "tiny": dataclasses.replace(PAPER, generator_width=32, pretrain_iterations=30000),
        "imagenet-subset": dataclasses.replace(PAPER, generator_width=32, pretrain_iterations=30000),
        "imagenet": dataclasses.replace(PAPER, generator_width=32, pretrain_iterations=50000),
    },
    "cpu-small": {
        "digits": dataclasses.replace(CPU_SMALL, iterations=60, batch_real=32, generator_width=16,
                                      pretrain_iterations=300, pretrain_lr_generator=2e-3,
                                      pretrain_lr_discriminator=2e-3),
        "mnist": dataclasses.replace(CPU_SMALL, generator_width=8, pretrain_iterations=600),
        "cifar": dataclasses.replace(CPU_SMALL, generator_width=8, pretrain_iterations=600),
    },
}
CPU_SMALL_FALLBACK = "cifar"  # families without a cpu-small row (64 px and up) use the CIFAR row


def feature_outputs(net: nn.Module, x: Tensor) -> tuple[list[Tensor], Tensor]:
    """Every activation of ``net`` on ``x`` plus its final embedding (what L_EM matches), and its logits."""
    with ActivationRecorder(net, ACTIVATIONS) as recorder:
        embedding = net.embed(x)
        layers = recorder.take()
    return [*layers, embedding], net.classifier(embedding)


DISTILLATION_HPARAMS = frozenset({"iterations", "lr_generator", "temperature", "task_balance", "batch_real",
                                  "batch_syn", "feature_arch", "dsa_strategy"})
"""What only the distillation reads: ``d2m-gen`` ablates every ``d2m`` run of its generator, whatever these are."""
PRETRAINING_HPARAMS = frozenset({"generator_weights", "pretrain_iterations", "pretrain_batch", "pretrain_lr_generator",
                                 "pretrain_lr_discriminator", "pretrain_d_steps", "pretrain_seed"})
"""What only the pre-training reads (``d2m-scratch`` starts from a random generator of the same width)."""


@register_distiller("d2m")
class D2M(Distiller):
    """D2M: distil the data into a pre-trained conditional generator (embedding + prediction matching)."""

    Hparams = D2MHparams
    serves_any_ipc = True
    pretrained: ClassVar[bool] = True  # start from the pre-trained generator (False: random initialisation)
    losses: ClassVar[tuple[str, ...]] = ("em", "pm")  # matching terms optimised; () = no distillation

    def default_hparams(self, spec: DatasetSpec, ipc: int | None, preset: str) -> D2MHparams:
        table = PRESETS[preset]
        return table.get(spec.family, table.get(CPU_SMALL_FALLBACK, PAPER))

    def check(self, spec: DatasetSpec, ipc: int | None) -> None:
        if ipc is not None:
            require_positive_ipc(ipc)
        architecture_for(spec.resolution)

    def starting_generator(self, task: DistillTask) -> StartingGenerator:
        hp: D2MHparams = task.hparams
        if not self.pretrained:
            if hp.generator_weights:
                raise invalid_value("generator_weights", hp.generator_weights,
                                    f"empty for {self.name}, which starts from a random generator")
            config = GeneratorConfig.for_spec(task.spec, hp.generator_width)
            net = build_generator(config, derive_seed(task.seed, "d2m-generator-init"), task.device)
            return StartingGenerator(net, {"source": "random init", "seconds": 0.0, "iterations": 0})
        if hp.generator_weights:
            return load_generator_weights(hp.generator_weights, task.spec, hp.generator_width, task.device)
        config = hp.pretrain_config(task.budget.cap(hp.pretrain_iterations))
        return pretrained_generator(task.train, task.spec, config, task.device, task.cache_dir, task.progress,
                                    task.log)

    def distill(self, task: DistillTask) -> GeneratorArtifact:
        self.check(task.spec, task.ipc)
        start = self.starting_generator(task)
        info: dict[str, Any] = {"pretrain": start.provenance, "losses": list(self.losses)}
        if self.losses:
            began = time.perf_counter()
            info["distill"] = distill_generator(start.generator, task, self.losses, self.name)
            info["distill"]["seconds"] = round(time.perf_counter() - began, 3)
        return GeneratorArtifact(start.generator, info)


STREAMS = ("feature-net", "real", "latent", "dsa")  # independent random streams of one distillation


def matching_terms(net_g: Generator, task: DistillTask, losses: tuple[str, ...],
                   streams: dict[str, torch.Generator]) -> dict[str, Tensor]:
    """One draw of (feature network, real batches, latents, DSA) from ``streams`` and the loss terms on it:
    ``{"em": L_EM, "pm": λ·L_PM}`` restricted to ``losses``."""
    hp: D2MHparams = task.hparams
    spec, device = task.spec, task.device
    feature_net = random_feature_net(hp.feature_arch, spec, streams["feature-net"], device)
    real = real_batches_by_class(task.train, hp.batch_real, streams["real"])
    per_class = hp.generated_per_class
    labels = class_labels(spec.num_classes, per_class, device)
    z = torch.randn(len(labels), net_g.config.latent_dim, generator=streams["latent"]).to(device)
    generated = net_g(z, labels).split(per_class)
    strategy = strategy_for(spec, hp.dsa_strategy)
    pairs = [dsa_siamese([r.to(device), g], strategy, streams["dsa"]) for r, g in zip(real, generated, strict=True)]
    real_sizes, syn_sizes = [len(r) for r in real], [per_class] * spec.num_classes
    with torch.no_grad():
        real_layers, real_logits = feature_outputs(feature_net, torch.cat([r for r, _ in pairs]))
    gen_layers, gen_logits = feature_outputs(feature_net, torch.cat([g for _, g in pairs]))
    terms = {}
    if "em" in losses:
        terms["em"] = embedding_matching_loss(real_layers, real_sizes, gen_layers, syn_sizes)
    if "pm" in losses:
        terms["pm"] = hp.task_balance * prediction_matching_loss(real_logits, real_sizes, gen_logits, syn_sizes,
                                                                 hp.temperature)
    return terms


def distill_generator(net_g: Generator, task: DistillTask, losses: tuple[str, ...],
                      name: str = "d2m") -> dict[str, Any]:
    """Train ``net_g`` in place on L = L_EM + λ·L_PM (the terms in ``losses``); returns the loop summary."""
    hp: D2MHparams = task.hparams
    optimizer = torch.optim.Adam(net_g.parameters(), lr=hp.lr_generator)
    streams = {name: task.generator(f"d2m-{name}", device="cpu") for name in STREAMS}
    last_terms: dict[str, float] = {}

    def step(it: int) -> float:
        net_g.train()
        terms = matching_terms(net_g, task, losses, streams)
        loss = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        last_terms.update({k: v.item() for k, v in terms.items()})
        return loss.item()

    state = {"generator": net_g, "optimizer": optimizer, **streams}
    report = run_iterations(task.budget.cap(hp.iterations), step, state, task.work_dir,
                            checkpoint_every=hp.checkpoint_every, progress=task.progress,
                            desc=f"{name} {task.spec.name}")
    return {**report.summary(), "last_terms": last_terms}


@register_distiller("d2m-gen")
class D2MGeneratorOnly(D2M):
    """D2M ablation: the pre-trained conditional generator, sampled without distillation."""

    ablation_of = "d2m"
    unread_hparams = DISTILLATION_HPARAMS
    losses = ()


@register_distiller("d2m-em")
class D2MEmbeddingOnly(D2M):
    """D2M ablation: embedding matching only (λ·L_PM dropped)."""

    ablation_of = "d2m"
    unread_hparams = frozenset({"temperature", "task_balance"})
    losses = ("em",)


@register_distiller("d2m-pm")
class D2MPredictionOnly(D2M):
    """D2M ablation: prediction matching only (L_EM dropped)."""

    ablation_of = "d2m"
    losses = ("pm",)


@register_distiller("d2m-scratch")
class D2MFromScratch(D2M):
    """D2M ablation: distillation into a randomly initialised generator (no pre-training)."""

    ablation_of = "d2m"
    unread_hparams = PRETRAINING_HPARAMS
    pretrained = False

