"""The one-time stage a distillation stands on, read from its record: its full cost, and the part this run paid.

Some methods build an expensive first stage once and reuse it from a cache across IPCs, seeds and runs: D2M's
conditional-GAN pre-training (``artifact.pretrain``), MTT's expert trajectories (``artifact.buffer``), DiM's GAN
and its pool of trained models (``artifact.gan``, ``artifact.pool``). A record's wall time contains the stage
only when that run built it, so raw wall times make one method cheap or dear depending on what the cache held
(``d2m-gen`` would cost 0.03 s beside a ``d2m`` that paid 18 minutes for the same generator). Reports therefore
split every distillation into the stage's full cost, whoever paid it, and the method's own time: wall time less
the part of the stage this run paid. Records without these fields (pixel methods, older records) have no stage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

PRETRAINED_SOURCES = ("trained", "cache")
"""``artifact.pretrain.source`` values of a generator pre-trained by the benchmark (user weights and a random
start cost nothing here)."""


def cached_builds(artifact: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The expert-trajectory caches an artifact reused: MTT's buffer, each of DiM's pool architectures."""
    if isinstance(artifact.get("buffer"), dict):
        yield artifact["buffer"]
    yield from (v for v in (artifact.get("pool") or {}).values() if isinstance(v, dict))


def waited(stage: dict[str, Any]) -> float:
    """Seconds the run waited for another run building the stage (a concurrent twin; recorded since the caches
    were locked): wall time the run holds but did not compute, so it is subtracted like a paid stage."""
    return float(stage.get("waited_seconds") or 0.0)


def stage_seconds(artifact: dict[str, Any]) -> tuple[float, float]:
    """(full cost of the one-time stages in seconds, the part of it that this run paid or waited for, which
    its wall time holds)."""
    stages: list[tuple[float, float]] = []  # (full, paid or waited now) per stage
    pretrain = artifact.get("pretrain") or {}
    if pretrain.get("source") in PRETRAINED_SOURCES:
        seconds = float(pretrain.get("seconds") or 0.0)
        stages.append((seconds, (seconds if pretrain["source"] == "trained" else 0.0) + waited(pretrain)))
    gan = artifact.get("gan") or {}
    if isinstance(gan, dict) and gan.get("seconds") is not None:
        stages.append((float(gan["seconds"]), (float(gan["seconds"]) if gan.get("built_now") else 0.0) + waited(gan)))
    stages += [(float(b.get("build_seconds_total") or 0.0), float(b.get("build_seconds_now") or 0.0) + waited(b))
               for b in cached_builds(artifact)]
    return sum(full for full, _ in stages), sum(paid for _, paid in stages)


def split_wall_time(result: dict[str, Any], wall_seconds: float | None) -> dict[str, float | None]:
    """A distillation record's ``stage_seconds`` (full) and ``own_seconds`` (wall time less what it paid)."""
    total, paid = stage_seconds(result.get("artifact") or {})
    own = None if wall_seconds is None else max(float(wall_seconds) - paid, 0.0)
    return {"stage_seconds": total, "own_seconds": own}
