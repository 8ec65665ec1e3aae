"""A ConvNet trained briefly on the real data, for coreset selection in its embedding space.

The DC paper (Zhao et al., ICLR 2021, §4 "coreset baselines") selects herding and k-center coresets with
features of a ConvNet trained on the training set; DeepCore (Guo, Zhao & Bai 2022,
``deepcore/methods/herding.py``, ``kcentergreedy.py``) does the same with a model trained for a few
"selection epochs". The trained network is cached on disk per (dataset, epochs, seed) so herding and
k-center at every IPC share one training run, and its embeddings of the training split are kept in memory
for the next cell of the same process (a local grid runs herding and k-center at every IPC back to back;
re-embedding MNIST costs minutes per cell on a CPU thread).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.checkpoints import cache_entry, load_or_build
from benchmark.data.images import LabelledImages
from benchmark.data.spec import DatasetSpec
from benchmark.models import build_model
from benchmark.seeding import derive_seed, generator

FEATURE_ARCH = "convnet"
EMBEDDINGS_KEPT_BYTES = 2 * 1024**3
"""Largest set of training-split embeddings kept in memory between cells (MNIST's 60,000 × 2,048 floats are
0.5 GB); larger splits are re-embedded by every cell rather than held."""

_kept_embeddings: dict[Path, list[Tensor]] = {}


def cache_path(cache_dir: Path, spec: DatasetSpec, train_size: int, epochs: int, seed: int) -> Path:
    return cache_entry(cache_dir, "feature_nets", spec,
                       {"n": train_size, "epochs": epochs, "seed": seed, "arch": FEATURE_ARCH})


def train_feature_net(train: LabelledImages, spec: DatasetSpec, epochs: int, seed: int, device: torch.device,
                      lr: float = 0.01, batch_size: int = 256) -> nn.Module:
    """SGD (momentum 0.9, weight decay 5e-4) on the real training set, no augmentation."""
    net = build_model(FEATURE_ARCH, spec, seed=derive_seed(seed, "feature-net-init"), device=device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    rng = generator(seed, "feature-net-batches", device=device)
    net.train()
    for _ in range(epochs):
        for x, y in train.batches(batch_size, rng):
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval()


def trained_feature_net(train: LabelledImages, spec: DatasetSpec, epochs: int, seed: int, device: torch.device,
                        cache_dir: Path) -> nn.Module:
    """The cached network if present and intact, else a freshly trained one (saved for the next call)."""
    state = load_or_build(cache_path(cache_dir, spec, len(train), epochs, seed),
                          lambda: train_feature_net(train, spec, epochs, seed, device).state_dict(),
                          device, "feature-net cache").value
    net = build_model(FEATURE_ARCH, spec, device=device)
    net.load_state_dict(state)
    return net.eval()


def training_split_embeddings(train: LabelledImages, spec: DatasetSpec, epochs: int, seed: int,
                              device: torch.device, cache_dir: Path) -> list[Tensor]:
    """Embeddings of every training image under the trained feature net, one tensor per class.

    The last split's embeddings are kept (on the host) while they fit :data:`EMBEDDINGS_KEPT_BYTES`, keyed by
    the feature net's cache file, so the next herding or k-center cell of the same dataset and seed reuses
    them: the same network gives the same features, so the selection is unchanged."""
    key = cache_path(cache_dir, spec, len(train), epochs, seed)
    if key in _kept_embeddings:
        return [f.to(device) for f in _kept_embeddings[key]]
    net = trained_feature_net(train, spec, epochs, seed, device, cache_dir)
    features = [class_embeddings(net, train, c) for c in range(spec.num_classes)]
    _kept_embeddings.clear()
    if sum(f.numel() * f.element_size() for f in features) <= EMBEDDINGS_KEPT_BYTES:
        _kept_embeddings[key] = [f.cpu() for f in features]
    return features


@torch.inference_mode()
def class_embeddings(net: nn.Module, train: LabelledImages, c: int, batch_size: int = 512) -> Tensor:
    """Penultimate-layer features of every training image of class ``c``."""
    idx = train.indices_of_class(c)
    return torch.cat([net.embed(train.images_at(idx[i : i + batch_size])) for i in range(0, len(idx), batch_size)])
