"""ConvNet: the standard evaluation and feature network of dataset distillation.

Follows VICO-UoE/DatasetCondensation ``networks.py::ConvNet``: ``depth`` blocks of conv 3×3 (width 128)
→ norm → activation → pooling, then one linear layer. Instance norm is ``GroupNorm(C, C, affine=True)``.
For single-channel input the first conv pads by 3 (28×28 MNIST becomes 32×32, as in the reference).
Depth defaults to 3 up to 32×32, 4 at 64×64 and 5 at 128×128 (the DM/MTT/GLaD convention).
"""

from __future__ import annotations

from torch import Tensor, nn

from benchmark.data.spec import DatasetSpec
from benchmark.errors import invalid_value
from benchmark.models.registry import flat_features, register_model

NORMS = ("instancenorm", "batchnorm", "layernorm", "groupnorm", "none")
ACTIVATIONS = ("relu", "sigmoid", "leakyrelu", "swish")
POOLINGS = ("avgpooling", "maxpooling", "none")


def default_depth(resolution: int) -> int:
    return 3 if resolution <= 32 else 4 if resolution <= 64 else 5


def make_norm(norm: str, channels: int, height: int, width: int) -> nn.Module | None:
    if norm == "instancenorm":
        return nn.GroupNorm(channels, channels, affine=True)
    if norm == "batchnorm":
        return nn.BatchNorm2d(channels, affine=True)
    if norm == "layernorm":
        return nn.LayerNorm([channels, height, width], elementwise_affine=True)
    if norm == "groupnorm":
        return nn.GroupNorm(4, channels, affine=True)
    if norm == "none":
        return None
    raise invalid_value("norm", norm, f"one of {', '.join(NORMS)}")


def make_activation(act: str) -> nn.Module:
    table = {"relu": lambda: nn.ReLU(inplace=True), "sigmoid": nn.Sigmoid,
             "leakyrelu": lambda: nn.LeakyReLU(0.01), "swish": nn.SiLU}
    if act not in table:
        raise invalid_value("activation", act, f"one of {', '.join(ACTIVATIONS)}")
    return table[act]()


def make_pool(pooling: str) -> nn.Module | None:
    if pooling == "avgpooling":
        return nn.AvgPool2d(2, 2)
    if pooling == "maxpooling":
        return nn.MaxPool2d(2, 2)
    if pooling == "none":
        return None
    raise invalid_value("pooling", pooling, f"one of {', '.join(POOLINGS)}")


class ConvNet(nn.Module):
    """ConvNet with ``embed`` (penultimate features) and ``block_outputs`` (each block's activation map)."""

    def __init__(self, spec: DatasetSpec, width: int = 128, depth: int | None = None, norm: str = "instancenorm",
                 act: str = "relu", pooling: str = "avgpooling") -> None:
        super().__init__()
        depth = default_depth(spec.resolution) if depth is None else depth
        if depth < 1:
            raise invalid_value("depth", depth, "at least 1")
        blocks: list[nn.Module] = []
        channels, size = spec.channels, spec.resolution + (4 if spec.channels == 1 else 0)
        for d in range(depth):
            layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=3 if spec.channels == 1 and d == 0 else 1)]
            norm_layer = make_norm(norm, width, size, size)
            layers += [norm_layer] if norm_layer is not None else []
            layers.append(make_activation(act))
            pool = make_pool(pooling) if size >= 2 else None
            if pool is not None:
                layers.append(pool)
                size //= 2
            blocks.append(nn.Sequential(*layers))
            channels = width
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(flat_features(self.features, spec), spec.num_classes)

    def block_outputs(self, x: Tensor) -> list[Tensor]:
        """Activation map after every block (conv → norm → act → pool): what attention matching reads."""
        outputs = []
        for block in self.features:
            x = block(x)
            outputs.append(x)
        return outputs

    def embed(self, x: Tensor) -> Tensor:
        return self.features(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.embed(x))


@register_model("convnet")
def convnet(spec: DatasetSpec, **kw) -> ConvNet:
    """ConvNet-128, instance norm, ReLU, avg-pool; depth 3 (≤32 px), 4 (64 px), 5 (128 px)."""
    return ConvNet(spec, **kw)


def _variant(name: str, doc: str, **fixed) -> None:
    def build(spec: DatasetSpec, **kw) -> ConvNet:
        return ConvNet(spec, **{**fixed, **kw})

    build.__doc__ = doc
    register_model(name)(build)


for _d in range(1, 6):
    _variant(f"convnet_d{_d}", f"ConvNet of depth {_d} (width 128, instance norm).", depth=_d)
for _w in (32, 64, 128, 256):
    _variant(f"convnet_w{_w}", f"ConvNet of width {_w} (default depth, instance norm).", width=_w)
for _tag, _norm in (("nn", "none"), ("bn", "batchnorm"), ("ln", "layernorm"), ("in", "instancenorm"),
                    ("gn", "groupnorm")):
    _variant(f"convnet_{_tag}", f"ConvNet with {_norm} normalisation.", norm=_norm)
for _tag, _act in (("as", "sigmoid"), ("ar", "relu"), ("al", "leakyrelu"), ("aswish", "swish")):
    _variant(f"convnet_{_tag}", f"ConvNet with {_act} activation.", act=_act)
for _tag, _pool in (("np", "none"), ("mp", "maxpooling"), ("ap", "avgpooling")):
    _variant(f"convnet_{_tag}", f"ConvNet with {_pool} pooling.", pooling=_pool)
