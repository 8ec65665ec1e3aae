"""Evaluation and feature architectures, registered by name (``benchmark.list`` shows them)."""

from benchmark.models import classic as _classic  # noqa: F401  (registers alexnet, vgg11, mlp)
from benchmark.models import resnet as _resnet  # noqa: F401
from benchmark.models import vit as _vit  # noqa: F401
from benchmark.models.convnet import ConvNet
from benchmark.models.registry import MODELS, build_model, describe_model, list_models, register_model

__all__ = ["MODELS", "ConvNet", "build_model", "describe_model", "list_models", "register_model"]
