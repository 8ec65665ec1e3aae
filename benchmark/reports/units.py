"""Human-readable durations and sizes for report cells (``None``/NaN print as ``MISSING``)."""

from __future__ import annotations

import math

MISSING = "—"


def _absent(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def seconds(value: float | None) -> str:
    if _absent(value):
        return MISSING
    if value < 120:
        return f"{value:.3g} s"
    return f"{value / 60:.3g} min" if value < 7200 else f"{value / 3600:.3g} h"


def size(value: float | None) -> str:
    if _absent(value):
        return MISSING
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def ratio(value: float | None) -> str:
    return MISSING if _absent(value) else f"{value:.3g}×"
