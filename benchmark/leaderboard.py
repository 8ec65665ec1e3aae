"""Leaderboard tables, plots and the leaderboard page: a pure function of the results store.

``python -m benchmark.leaderboard DIR`` regenerates everything under ``DIR`` — ``LEADERBOARD.md`` (printed),
``leaderboard.tex``, ``index.html`` (the offline page), ``plots/`` and ``images/`` — from the records
(:mod:`benchmark.reports` computes each part); ``--format markdown|latex|csv|json`` instead prints one row
per (dataset, method, variant, IPC, architecture, protocol) with mean, std, n, the comparisons with
``random`` and ``full`` and the cost columns, for scripts to consume.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.reports import markdown, page
from benchmark.reports.build import build_report
from benchmark.reports.frame import accuracies_by_key, records_frame, summarise, variant_labels
from benchmark.reports.stats import with_comparisons
from benchmark.reports.tables import pivot, table_positions
from benchmark.store import ResultsStore

__all__ = ["latex_report", "main", "records_frame", "rows_for_scripts", "summarise", "variant_labels", "write_reports"]


def latex_report(summary: pd.DataFrame) -> str:
    parts = []
    for arch, protocol in table_positions(summary):
        table = pivot(summary, arch, protocol, lambda r: f"{r['mean']:.1f} $\\pm$ {r['std']:.1f}")
        parts.append(f"% {arch}, protocol {protocol}\n" + table.to_latex(escape=False))
    return "\n".join(parts)


def write_reports(results: Path) -> str:
    """Regenerate every report under ``results``; return the markdown leaderboard."""
    report = build_report(results)
    text = markdown.render(report)
    (results / "LEADERBOARD.md").write_text(text)
    if not report.summary.empty:
        (results / "leaderboard.tex").write_text(latex_report(report.summary))
    (results / "index.html").write_text(page.render(report))
    return text


def rows_for_scripts(results: Path, fmt: str) -> str:
    frame = records_frame(ResultsStore(results))
    summary = with_comparisons(summarise(frame), accuracies_by_key(frame))
    if fmt == "json":
        return summary.to_json(orient="records", indent=1)
    if fmt == "csv":
        return summary.to_csv(index=False)
    if fmt == "latex":
        return summary.to_latex(index=False, float_format="%.2f")
    return summary.to_markdown(index=False, floatfmt=".2f")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results", help="results directory (default: results/)")
    parser.add_argument("--format", choices=["markdown", "latex", "csv", "json"],
                        help="print one row per (dataset, method, ipc, arch) instead of writing the reports")
    args = parser.parse_args(argv)
    try:
        results = Path(args.results)
        if not (results / "records").is_dir():
            raise BenchmarkError(f"{results} holds no results store (no records/ folder); run benchmark.run first")
        print(rows_for_scripts(results, args.format) if args.format else write_reports(results))
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
