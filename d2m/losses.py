"""D2M's two matching losses, as pure functions of a feature network's outputs on real and generated images.

Both compare a real batch and a generated batch of the same class through *per-class batch means*;
rows are grouped class-major (``sizes[c]`` consecutive rows of class ``c``). The D2M paper's method
section is not available to the project, so the exact forms below are its documented reading of the
paper's description (see DESIGN §5):

* **Embedding matching** L_EM: for every intermediate activation and the final embedding, the channel
  attention of each image (:func:`benchmark.matching.channel_attention`: |a| pooled over space per
  channel, L2-normalised; a flat embedding is normalised as it is), averaged over the class's images;
  the squared distance between the real and generated class means, averaged over classes and layers.
  This is DataDAM's attention-matching error (``main_DataDAM.py``, ``error(..., "MSE_B")``) with channel
  instead of spatial attention, averaged rather than summed so that λ does not depend on the number of
  classes or layers.
* **Prediction matching** L_PM: per class, the mean temperature-softened prediction of the real images
  p = mean softmax(z_real / T) and of the generated images q = mean softmax(z_gen / T);
  KL(p ‖ q)·T², averaged over classes. The real side is detached. The T² factor is Hinton et al.'s
  ("Distilling the knowledge in a neural network", 2015, §2) so that the gradient's scale does not shrink
  as 1/T² when T grows, which keeps λ meaningful across the temperatures the paper studies.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.matching import channel_attention, class_means


def embedding_matching_loss(real: Sequence[Tensor], real_sizes: Sequence[int], generated: Sequence[Tensor],
                            generated_sizes: Sequence[int]) -> Tensor:
    """L_EM over paired layers (intermediate activations then the final embedding) of real and generated."""
    if len(real) != len(generated) or not real:
        raise ValueError(f"embedding matching needs the same non-zero number of layers, got {len(real)} "
                         f"and {len(generated)}")
    per_layer = []
    for a_real, a_gen in zip(real, generated, strict=True):
        mean_real = class_means(channel_attention(a_real.detach()), real_sizes)
        mean_gen = class_means(channel_attention(a_gen), generated_sizes)
        per_layer.append(((mean_real - mean_gen) ** 2).sum(dim=1).mean())
    return torch.stack(per_layer).mean()


def prediction_matching_loss(real_logits: Tensor, real_sizes: Sequence[int], generated_logits: Tensor,
                             generated_sizes: Sequence[int], temperature: float) -> Tensor:
    """L_PM: KL(real ‖ generated) between class-mean softened predictions, × T², averaged over classes."""
    p = class_means(F.softmax(real_logits.detach() / temperature, dim=1), real_sizes)
    q = class_means(F.softmax(generated_logits / temperature, dim=1), generated_sizes)
    kl = (p * (torch.log(p.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(dim=1)
    return kl.mean() * temperature**2
