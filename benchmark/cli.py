"""Shared command-line plumbing: one-line errors with exit status 2, comma lists, thread settings."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable

from benchmark.errors import BenchmarkError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def guarded(main: Callable[[], int]) -> int:
    """Run a command's body; bad input prints ``error: ...`` and exits 2, Ctrl-C exits 130."""
    try:
        return main()
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: finished cells are kept; rerun the same command to continue", file=sys.stderr)
        return EXIT_INTERRUPTED


def comma_list(flag: str, value: str | None, kind: type = str) -> list | None:
    """``"a,b"`` → ["a", "b"] (or ints); a bad item is a one-line error naming the flag."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise BenchmarkError(f"{flag}: empty list")
    if kind is int:
        try:
            return [int(v) for v in items]
        except ValueError:
            raise BenchmarkError(f"{flag}: expected comma-separated integers, got {value!r}") from None
    return items


def command_line(module: str, argv: list[str] | None) -> str:
    """How this run was launched, as a shell line (what a reader needs to reproduce a record)."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
