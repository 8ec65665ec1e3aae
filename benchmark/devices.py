"""``--device auto|cpu|cuda[:N]`` → a torch.device, with a one-line error for what cannot be used."""

from __future__ import annotations

import torch

from benchmark.errors import BenchmarkError, invalid_value


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise BenchmarkError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise invalid_value("--device", name, f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
        return device
    raise invalid_value("--device", name, "auto, cpu, cuda or cuda:N")
