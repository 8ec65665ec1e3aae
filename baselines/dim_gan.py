"""DiM's conditional GAN: the generator that stores the distilled dataset, its critic, and their updates.

Architecture after vimar-gu/DiM ``gan_model.py`` (itself after richardkxu/GANs-on-CIFAR10), training step
after ``gen_condense.py::train`` / ``pool_match.py::train`` (an AC-GAN with a WGAN-GP critic):

* :class:`DiMGenerator`: noise of ``noise_dim`` values whose first ``num_classes`` are replaced by the
  one-hot label → linear → BN → ReLU → a ``width``-channel seed map → transposed conv ×2 up, three 3×3 convs,
  transposed conv ×2, 3×3 conv, transposed conv ×2, 3×3 conv to the image channels → tanh (images in
  [−1, 1]), batch norm and ReLU after every layer but the last. The reference covers 28 px (4×4 seed, first
  up-convolution with kernel 3: 7 → 14 → 28) and 32 px (kernel 4: 8 → 16 → 32); the same rule serves every
  resolution divisible by 4 (8 px digits: a 1×1 seed).
* :class:`DiMCritic`: eight 3×3 convs of ``width`` channels with strides 1,2,1,2,1,1,1,2, each followed by
  layer norm and leaky ReLU, a global max pool (the reference's 4×4 max pool of its 4×4 map), and two heads:
  the critic score and the class logits.
* :func:`gan_step`: one generator update (−critic score + class cross-entropy of generated images, plus an
  optional extra term — DiM's logit matching) with labels of the real batch, then one critic update on
  freshly labelled fakes: fake − real scores, class cross-entropy of both, gradient penalty ×10.

Width 196 and noise 100 are the reference's; ``noise_dim`` must exceed the number of classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.errors import invalid_value

CRITIC_STRIDES = (1, 2, 1, 2, 1, 1, 1, 2)


def seed_size(resolution: int) -> tuple[int, int]:
    """(seed map side, kernel of the first up-convolution) so that three ×2 up-convolutions reach ``resolution``."""
    if resolution % 4 or resolution < 8:
        raise invalid_value("resolution", resolution, "a multiple of 4, at least 8, for DiM's generator")
    return (resolution // 8, 4) if resolution % 8 == 0 else ((resolution + 4) // 8, 3)


def _up(width: int, kernel: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(width, width, kernel, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]


def _conv(width: int) -> list[nn.Module]:
    return [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]


class DiMGenerator(nn.Module):
    """Label-conditioned generator of ``gan_model.py::Generator``, any resolution divisible by 4."""

    def __init__(self, channels: int, resolution: int, num_classes: int, noise_dim: int = 100,
                 width: int = 196) -> None:
        super().__init__()
        if noise_dim <= num_classes:
            raise invalid_value("noise_dim", noise_dim, f"more than the {num_classes} classes it encodes")
        self.seed, first_kernel = seed_size(resolution)
        self.width, self.noise_dim, self.num_classes = width, noise_dim, num_classes
        self.stem = nn.Sequential(nn.Linear(noise_dim, width * self.seed**2), nn.BatchNorm1d(width * self.seed**2),
                                  nn.ReLU())
        self.body = nn.Sequential(*_up(width, first_kernel), *_conv(width), *_conv(width), *_conv(width),
                                  *_up(width, 4), *_conv(width), *_up(width, 4),
                                  nn.Conv2d(width, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.stem(z).view(-1, self.width, self.seed, self.seed))

    def noise(self, labels: Tensor, generator: torch.Generator) -> Tensor:
        """Gaussian noise with the one-hot label written over its first entries (the reference's conditioning)."""
        z = torch.randn(len(labels), self.noise_dim, generator=generator, device=generator.device)
        z[:, : self.num_classes] = F.one_hot(labels.to(z.device), self.num_classes).to(z.dtype)
        return z.to(self.stem[0].weight.device)


class DiMCritic(nn.Module):
    """``gan_model.py::Discriminator``: WGAN critic score and auxiliary class logits."""

    def __init__(self, channels: int, resolution: int, num_classes: int, width: int = 196) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size, c_in = resolution, channels
        for stride in CRITIC_STRIDES:
            size = (size - 1) // stride + 1
            layers += [nn.Conv2d(c_in, width, 3, stride=stride, padding=1), nn.LayerNorm([width, size, size]),
                       nn.LeakyReLU()]
            c_in = width
        self.features = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.score = nn.Linear(width, 1)
        self.classes = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)
        return self.score(h), self.classes(h)


def gradient_penalty(critic: DiMCritic, real: Tensor, fake: Tensor, rng: torch.Generator, weight: float) -> Tensor:
    """WGAN-GP: weight · E[(‖∇ critic(x̂)‖ − 1)²] on random interpolates of real and fake images."""
    alpha = torch.rand(len(real), 1, 1, 1, generator=rng, device=rng.device).to(real.device)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    grads = torch.autograd.grad(critic(mixed)[0].sum(), mixed, create_graph=True)[0]
    return weight * ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()


@dataclass
class GANLosses:
    generator: float
    critic: float
    extra: float = 0.0


def gan_step(gen: DiMGenerator, critic: DiMCritic, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
             real: Tensor, labels: Tensor, rng: torch.Generator, gp_weight: float,
             extra: Callable[[Tensor, Tensor], Tensor] | None = None) -> GANLosses:
    """One generator and one critic update on a real batch in [−1, 1] (``gen_condense.py``/``pool_match.py``)."""
    critic.eval()
    fake = gen(gen.noise(labels, rng))
    score, logits = critic(fake)
    g_loss = -score.mean() + F.cross_entropy(logits, labels)
    extra_loss = extra(fake, labels) if extra is not None else None
    if extra_loss is not None:
        g_loss = g_loss + extra_loss
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()

    critic.train()
    fake_labels = torch.randint(0, gen.num_classes, (len(real),), generator=rng, device=rng.device).to(labels.device)
    with torch.no_grad():
        fake = gen(gen.noise(fake_labels, rng))
    fake_score, fake_logits = critic(fake)
    real_score, real_logits = critic(real)
    d_loss = (fake_score.mean() - real_score.mean() + F.cross_entropy(fake_logits, fake_labels)
              + F.cross_entropy(real_logits, labels) + gradient_penalty(critic, real, fake, rng, gp_weight))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    return GANLosses(g_loss.item(), d_loss.item(), extra_loss.item() if extra_loss is not None else 0.0)
