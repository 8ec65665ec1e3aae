"""Write hand-made records into a results store, shaped as ``benchmark.runner`` writes them, so report
tests control every number (accuracies, seconds, bytes) instead of training networks."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmark.cells import config_key
from benchmark.distiller import PixelArtifact, SyntheticSet
from benchmark.store import ResultsStore

PROVENANCE = {"git": {"commit": "0123456789abcdef", "dirty": False}, "device": "cpu (test, 1 threads)"}


def protocol(name: str = "smoke") -> dict:
    return {"name": name, "epochs": 40, "models": 2, "description": f"the {name} protocol of the tests"}


class StoreBuilder:
    def __init__(self, root: Path) -> None:
        self.store = ResultsStore(root)
        self.store.ensure_writable()

    def distill(self, method: str, ipc: int | None, seed: int = 0, dataset: str = "digits", seconds: float = 1.0,
                storage: int = 1000, serves_any: bool = False, hparams: dict | None = None,
                peak: int = 2**20, budget: str = "cpu-small", artifact: PixelArtifact | None = None,
                ipc_independent: bool = False, artifact_info: dict | None = None) -> str:
        config = {"stage": "distill", "dataset": dataset, "method": method, "ipc": ipc, "budget": budget,
                  "seed": seed, "hparams": hparams or {}}
        key = config_key(config)
        self.store.write_record("distill", key, {
            "key": key, "stage": "distill", "status": "ok", "config": config,
            "result": {"serves_any_ipc": serves_any, "ipc_independent": ipc_independent, "storage_bytes": storage,
                       "artifact": artifact_info or {}},
            "cost": {"wall_seconds": seconds, "peak_memory_bytes": peak, "device": "cpu"}, "provenance": PROVENANCE})
        if artifact is not None:
            self.store.save_artifact(key, artifact)
        return key

    def evaluate(self, distill_key: str, ipc: int | None, accuracies: list[float], arch: str = "convnet",
                 protocol_name: str = "smoke", sample_seconds: float = 0.0, stage: str = "eval",
                 extra_config: dict | None = None, final_train_loss: list[float] | None = None) -> str:
        distill = self.store.read_record("distill", distill_key)["config"]
        config = {"stage": stage, "distill_key": distill_key, "dataset": distill["dataset"],
                  "method": distill["method"], "ipc": ipc, "arch": arch, "protocol": protocol(protocol_name),
                  "sample_seed": distill["seed"], **(extra_config or {})}
        key = config_key(config)
        self.store.write_record(stage, key, {
            "key": key, "stage": stage, "status": "ok", "config": config,
            "result": {"accuracies": accuracies, **({"final_train_loss": final_train_loss} if final_train_loss else {})},
            "cost": {"wall_seconds": 2.0, "sample_seconds": sample_seconds, "device": "cpu"},
            "provenance": PROVENANCE})
        return key

    def fail(self, stage: str, method: str, ipc: int | None, arch: str | None = "convnet", dataset: str = "digits",
             error: str = "RuntimeError: simulated", protocol_overrides: dict | None = None) -> None:
        config = {"stage": stage, "dataset": dataset, "method": method, "ipc": ipc}
        if stage == "eval":
            config.update(arch=arch, protocol={**protocol(), **(protocol_overrides or {})})
        key = config_key(config)
        self.store.write_failure(key, {"key": key, "stage": stage, "label": f"{stage} {method} {dataset} ipc={ipc}",
                                       "config": config, "error": error})


def pixel_set(ipc: int, classes: int = 10, channels: int = 1, size: int = 8) -> PixelArtifact:
    """A pixel artifact whose image of class c is filled with the normalised value c (checks the layout)."""
    y = torch.arange(classes).repeat_interleave(ipc)
    x = y.float().view(-1, 1, 1, 1).expand(-1, channels, size, size).clone()
    return PixelArtifact(SyntheticSet(x, y), ipc)
