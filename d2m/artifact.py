"""The D2M artifact: a class-conditional generator that serves a training set of any IPC.

``synthesize(ipc, seed)`` draws ``ipc`` fresh latent vectors per class and returns the generated images
class-major (``[0]*ipc + [1]*ipc + ...``, like every pixel method). Class ``c``'s latents come from their
own stream seeded by (seed, c), so a set is a deterministic function of (generator, ipc, seed) and the
IPC-k set of a seed begins, class by class, with its IPC-j set for j < k. Sampling runs the generator in
eval mode (batch norm uses its running statistics), so an image does not depend on what else is drawn.

What must be stored to serve it is the generator: ``storage_bytes`` counts its parameters and batch-norm
statistics, whatever the IPC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from benchmark.checkpoints import load_checked
from benchmark.distiller import Artifact, LoadContext, SyntheticSet
from benchmark.errors import BenchmarkError
from benchmark.seeding import generator as seeded_generator
from benchmark.synthetic import class_labels, require_positive_ipc
from d2m.generator import Generator, GeneratorConfig, build_generator, parameter_count, state_bytes
from d2m.pretrain import save_generator

GENERATOR_FILE = "generator.pt"
SAMPLE_CHUNK = 512  # images per generator forward pass while sampling (bounds memory at ImageNet-1K scale)


class GeneratorArtifact(Artifact):
    """A distilled (or, for ``d2m-gen``, only pre-trained) conditional generator."""

    serves_any_ipc = True

    def __init__(self, generator: Generator, info: dict[str, Any]) -> None:
        self.generator = generator
        self.info = info

    @torch.no_grad()
    def synthesize(self, ipc: int, seed: int) -> SyntheticSet:
        require_positive_ipc(ipc)
        net, config = self.generator, self.generator.config
        device = next(net.parameters()).device
        z = torch.cat([torch.randn(ipc, config.latent_dim, generator=seeded_generator(seed, "d2m-sample", c))
                       for c in range(config.num_classes)]).to(device)
        y = class_labels(config.num_classes, ipc, device)
        was_training = net.training
        net.eval()
        x = torch.cat([net(z[i : i + SAMPLE_CHUNK], y[i : i + SAMPLE_CHUNK]) for i in range(0, len(z), SAMPLE_CHUNK)])
        net.train(was_training)
        return SyntheticSet(x, y)

    def storage_bytes(self) -> int:
        return state_bytes(self.generator)

    def save(self, path: Path) -> None:
        save_generator(self.generator, path / GENERATOR_FILE, {"info": self.info})

    @classmethod
    def load(cls, path: Path, context: LoadContext) -> GeneratorArtifact:
        data = load_checked(path / GENERATOR_FILE, context.device, "d2m generator artifact")
        if data is None:
            raise BenchmarkError(f"d2m artifact {path / GENERATOR_FILE} is missing or corrupt; distil it again")
        net = build_generator(GeneratorConfig.from_dict(data["config"]), seed=0, device=context.device)
        net.load_state_dict(data["state"])
        return cls(net, data["info"])

    def summary(self) -> dict[str, Any]:
        config = self.generator.config
        return {"generator_parameters": parameter_count(self.generator), "generator_width": config.width,
                "generator_resolution": config.resolution, "latent_dim": config.latent_dim, **self.info}
