"""Where D2M's starting generator comes from: a cached conditional-GAN pre-training, or the user's weights.

The paper distils into a *pre-trained* BigGAN; published weights cannot be downloaded on an offline
machine, so the project pre-trains the generator of :mod:`d2m.generator` on the dataset's training split
(DESIGN §5). The GAN is trained with the **hinge loss** (Lim & Ye 2017; Miyato et al. 2018, as BigGAN
does), a spectrally normalised projection discriminator, Adam with β = (0, 0.999) (BigGAN-PyTorch
``train_fns.py`` defaults) and ``d_steps`` discriminator updates per generator update; fake batches take
the labels of a real batch (the data's class frequencies).

The result is cached under ``task.cache_dir/d2m_generators/`` keyed by the dataset (spec summary and
training-set size) and a hash of the pre-training configuration, which includes its own **fixed seed**
(not the distillation seed): every seed of a grid, and ``d2m``, ``d2m-gen``, ``d2m-em`` and ``d2m-pm``,
share one pre-trained generator and pay for it once, also when they run at once (the first trains it
under a lock, the others wait: :func:`benchmark.checkpoints.load_or_build`). The cache entry keeps what the
training cost (seconds, iterations) so each artifact records it separately from its own distillation. A
corrupt entry fails its checksum and is retrained (:func:`benchmark.checkpoints.load_checked` says so); a
killed pre-training resumes from its last checkpoint.

``generator_weights`` loads a user-supplied file instead: one written by :func:`save_generator` (a D2M
artifact's ``generator.pt`` or a cache entry), or a bare state dict of this architecture. BigGAN-PyTorch
checkpoints use other layer names and a hierarchical latent and would need a conversion first.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmark.checkpoints import cache_entry, checked_digest, load_or_build, save_checked
from benchmark.data.images import LabelledImages
from benchmark.data.spec import DatasetSpec
from benchmark.errors import BenchmarkError, first_line, invalid_value
from benchmark.iterate import run_iterations
from benchmark.seeding import derive_seed, generator
from d2m.generator import Generator, GeneratorConfig, build_discriminator, build_generator

GAN_BETAS = (0.0, 0.999)  # BigGAN-PyTorch G_B1/G_B2, D_B1/D_B2 defaults
PRETRAIN_VERSION = "1"  # bump when the pre-training computation changes, so stale cache entries are not reused


@dataclass(frozen=True)
class PretrainConfig:
    """What determines a pre-trained generator (besides the data): part of its cache key."""

    width: int
    iterations: int
    batch_size: int
    lr_generator: float
    lr_discriminator: float
    d_steps: int
    seed: int
    checkpoint_every: int = 100


@dataclass
class StartingGenerator:
    """A generator to distil into, with where it came from and what producing it cost."""

    generator: Generator
    provenance: dict[str, Any]


def generator_file(net: Generator, extra: dict | None = None) -> dict[str, Any]:
    """What a generator file holds: the architecture and weights (what ``generator_weights`` reads)."""
    return {"config": net.config.as_dict(), "state": net.state_dict(), **(extra or {})}


def save_generator(net: Generator, path: Path, extra: dict | None = None) -> None:
    """Checksummed generator file (a D2M artifact's ``generator.pt``)."""
    save_checked(generator_file(net, extra), path)


def cache_path(cache_dir: Path, spec: DatasetSpec, train_size: int, config: PretrainConfig) -> Path:
    return cache_entry(cache_dir, "d2m_generators", spec,
                       {"n": train_size, "config": asdict(config), "version": PRETRAIN_VERSION})


def train_gan(train: LabelledImages, spec: DatasetSpec, config: PretrainConfig, device: torch.device,
              work_dir: Path, progress: bool = False,
              after_update: Callable[[int, Generator], None] | None = None) -> tuple[Generator, dict[str, Any]]:
    """Hinge-loss conditional GAN training; returns the generator and the loop's summary. ``after_update``
    (iteration, generator) lets a learning-curve probe read the generator between updates."""
    gen_config = GeneratorConfig.for_spec(spec, config.width)
    net_g = build_generator(gen_config, derive_seed(config.seed, "d2m-pretrain-g"), device)
    net_d = build_discriminator(gen_config, derive_seed(config.seed, "d2m-pretrain-d"), device)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=config.lr_generator, betas=GAN_BETAS)
    opt_d = torch.optim.Adam(net_d.parameters(), lr=config.lr_discriminator, betas=GAN_BETAS)
    streams = {name: generator(config.seed, f"d2m-pretrain-{name}") for name in ("batches", "latent")}
    labels_on = train.labels.device

    def real_batch() -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(train), (config.batch_size,), generator=streams["batches"]).to(labels_on)
        return train.images_at(idx).to(device), train.labels[idx].to(device)  # the split may live on the host

    def latent() -> torch.Tensor:
        return torch.randn(config.batch_size, gen_config.latent_dim, generator=streams["latent"]).to(device)

    def step(it: int) -> float:
        net_g.train()
        net_d.train()
        for _ in range(config.d_steps):
            x_real, y = real_batch()
            with torch.no_grad():
                x_fake = net_g(latent(), y)
            scores = net_d(torch.cat([x_real, x_fake]), torch.cat([y, y])).split(len(y))  # D has no batch norm
            loss_d = F.relu(1 - scores[0]).mean() + F.relu(1 + scores[1]).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        _, y = real_batch()
        loss_g = -net_d(net_g(latent(), y), y).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if after_update is not None:
            after_update(it, net_g)
        return loss_d.item() + loss_g.item()  # a NaN in either stops the loop

    state = {"generator": net_g, "discriminator": net_d, "opt_g": opt_g, "opt_d": opt_d, **streams}
    report = run_iterations(config.iterations, step, state, work_dir, checkpoint_every=config.checkpoint_every,
                            progress=progress, desc=f"d2m pre-training {spec.name}")
    return net_g, report.summary()


def pretrained_generator(train: LabelledImages, spec: DatasetSpec, config: PretrainConfig, device: torch.device,
                         cache_dir: Path, progress: bool = False,
                         log: Callable[[str], None] = lambda message: None) -> StartingGenerator:
    """The cached pre-trained generator for (data, config), training and caching it first if needed."""
    path = cache_path(cache_dir, spec, len(train), config)
    work_dir = path.with_suffix(".work")

    def pretrain() -> dict[str, Any]:
        log(f"d2m: pre-training the generator on {spec.name} for {config.iterations} iterations")
        start = time.perf_counter()
        net, loop = train_gan(train, spec, config, device, work_dir, progress)
        # on a CPU the GAN's float sums split by thread, so the same config gives another generator on another
        # thread count (digits cpu-small: last loss 1.4203 on 2 threads, 1.8094 on 1); the cache keeps which
        cost = {"seconds": round(time.perf_counter() - start, 3), "iterations": loop["iterations"],
                "resumed_from": loop["resumed_from"], "last_loss": loop["last_loss"], "config": asdict(config),
                "made_on": {"device": device.type, "threads": torch.get_num_threads()}}
        return generator_file(net, {"cost": cost})

    saved, trained_now, waited = load_or_build(path, pretrain, device, "d2m pre-trained generator cache")
    if trained_now:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        log(f"d2m: pre-trained generator from cache {path}")
    net = build_generator(GeneratorConfig.for_spec(spec, config.width), seed=0, device=device)
    net.load_state_dict(saved["state"])
    return StartingGenerator(net, {**saved["cost"], "source": "trained" if trained_now else "cache",
                                   "waited_seconds": round(waited, 3), "cache_file": path.name,
                                   "sha256": checked_digest(path)})


def load_generator_weights(path: str, spec: DatasetSpec, width: int, device: torch.device) -> StartingGenerator:
    """A generator from the user's file; a missing, unreadable or mismatching file is a one-line error."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise invalid_value("generator_weights", path, "the path of an existing generator weights file")
    try:
        data = torch.load(file, map_location=device, weights_only=True)
    except Exception as e:  # any unreadable file is the same user error
        raise BenchmarkError(f"generator_weights={path!r} is not a readable torch file ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise BenchmarkError(f"generator_weights={path!r} holds a {type(data).__name__}, not a state dict")
    if "config" in data and "state" in data:
        saved = GeneratorConfig.from_dict(data["config"])
        expected = (spec.channels, spec.resolution, spec.num_classes)
        if (saved.channels, saved.resolution, saved.num_classes) != expected:
            raise BenchmarkError(f"generator_weights={path!r} is for {saved.channels}x{saved.resolution}x"
                                 f"{saved.resolution} images of {saved.num_classes} classes, but {spec.name} has "
                                 f"{spec.channels}x{spec.resolution}x{spec.resolution} and {spec.num_classes}")
        width, state = saved.width, data["state"]
    else:
        state = data
    net = build_generator(GeneratorConfig.for_spec(spec, width), seed=0, device=device)
    try:
        net.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as e:
        raise BenchmarkError(f"generator_weights={path!r} does not fit the d2m generator of width {width} for "
                             f"{spec.name} ({first_line(e)})") from None
    return StartingGenerator(net, {"source": "user weights", "path": str(file), "seconds": 0.0, "iterations": 0})
