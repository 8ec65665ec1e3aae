"""``results/index.html``: the leaderboard as one static page that works offline from ``file://``.

No server, no CDN: CSS and JavaScript are inline, figures are relative links into ``plots/`` and
``images/`` beside the page. Every table sorts by clicking a header (numbers by value, the rest as text);
rows, tables and figures carry ``data-dataset``/``data-ipc``/``data-arch``, and the filter bar hides what
does not match (an element without an attribute is never hidden by that filter: ``full`` serves every
IPC). Every accuracy row shows the protocol (description on hover and under *Protocols*) and the commit.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from benchmark.reports import serving_cost, units
from benchmark.reports.build import Caveat, Report
from benchmark.reports.frame import method_label
from benchmark.reports.markdown import ABLATIONS, HEADER, TESTS, cost_table
from benchmark.reports.nas import nas_table
from benchmark.reports.plots import Figure
from benchmark.reports.tables import LEGEND, ablation_table, accuracy_cell, pivot, table_positions

FACETS = ("dataset", "ipc", "arch")


@dataclass(frozen=True)
class Column:
    header: str
    text: Callable[[pd.Series], str]
    sort: Callable[[pd.Series], object] | None = None  # the value sorted by (default: the text)
    hover: Callable[[pd.Series], str] | None = None
    wrap: bool = False  # long values (method variants, commit lists) break after their commas


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def plain(markdown_text: str) -> str:
    """Shared markdown sentences as page text (no backticks or emphasis marks)."""
    return markdown_text.replace("`", "").replace("*", "")


def number(value: object) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def facet_attrs(facets: dict[str, object]) -> str:
    return "".join(f' data-{k}="{esc(v)}"' for k, v in facets.items() if v not in (None, "", 0))


def table(rows: pd.DataFrame, columns: list[Column], facets: Callable[[pd.Series], dict] | None = None,
          table_id: str = "", caption: str = "") -> str:
    """A sortable table; each row carries its facets for the filters."""
    head = "".join(f'<th scope="col" tabindex="0">{esc(c.header)}</th>' for c in columns)
    body = []
    for _, row in rows.iterrows():
        cells = []
        for c in columns:
            key = c.sort(row) if c.sort else None
            sort_attr = f' data-v="{number(key)}"' if number(key) is not None else ""
            hover = f' title="{esc(c.hover(row))}"' if c.hover else ""
            text, wrap = esc(c.text(row)), ' class="wrap"' if c.wrap else ""
            cells.append(f'<td{wrap}{sort_attr}{hover}>{text.replace(",", ",<wbr>") if c.wrap else text}</td>')
        attrs = facet_attrs(facets(row)) if facets else ""
        body.append(f'<tr class="facet"{attrs}>{"".join(cells)}</tr>')
    ident = f' id="{esc(table_id)}"' if table_id else ""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table class="sortable"{ident}>{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


WRAPPED = {"method", "ablation", "command", "commit"}
"""Columns of the pre-formatted tables whose values run long (method variants, command lines, commit lists)."""


def formatted_columns(formatted: pd.DataFrame) -> list[Column]:
    """A pre-formatted frame's columns, each sorted by the leading number of its cells."""
    return [Column(str(name), lambda r, n=name: r[n], lambda r, n=name: leading_number(r[n]), wrap=name in WRAPPED)
            for name in formatted.columns]


def frame_table(frame: pd.DataFrame, index_header: str, caption: str = "", facets: dict | None = None) -> str:
    """A pre-formatted table (rows named by the index), sortable by the leading number of each cell."""
    shown = frame.reset_index().rename(columns={"index": index_header})
    attrs = facet_attrs(facets or {})
    return f'<div class="facet"{attrs}>{table(shown, formatted_columns(shown), caption=caption)}</div>'


def leading_number(text: object) -> float | None:
    head = str(text).split(" ")[0].rstrip("%×")
    return number(head)


def results_columns(report: Report) -> list[Column]:
    def fmt(name: str, pattern: str) -> Callable[[pd.Series], str]:
        return lambda r: "—" if number(r[name]) is None else pattern.format(r[name])

    return [
        Column("dataset", lambda r: r["dataset"]), Column("method", method_label, wrap=True),
        Column("IPC", lambda r: r["ipc"] or "whole", lambda r: r["ipc"]), Column("arch", lambda r: r["arch"]),
        Column("protocol", lambda r: r["protocol"], hover=lambda r: report.protocols.get(r["protocol"], "")),
        Column("accuracy (%)", accuracy_cell, lambda r: r["mean"]), Column("n", lambda r: r["n"], lambda r: r["n"]),
        Column("gain vs random", lambda r: "reference" if r["method"] == "random" else fmt("gain", "{:+.2f}")(r),
               lambda r: r["gain"]),
        Column("95% interval", lambda r: "—" if number(r["gain_low"]) is None
               else f"[{r['gain_low']:+.2f}, {r['gain_high']:+.2f}]", lambda r: r["gain_low"]),
        Column("p", fmt("p_value", "{:.3g}"), lambda r: r["p_value"],
               hover=lambda r: TEST_UNITS.get(r["test_unit"], "")),
        Column("of full", lambda r: "—" if number(r["of_full"]) is None else f"{100 * r['of_full']:.1f}%",
               lambda r: r["of_full"]),
        Column("budget", lambda r: r["budget"]),
        Column("distill time", lambda r: units.seconds(r["distill_seconds"]), lambda r: r["distill_seconds"],
               hover=lambda r: "from scratch: the distillation plus any one-time stage it reused from a cache"),
        Column("storage", lambda r: units.size(r["storage_bytes"]), lambda r: r["storage_bytes"]),
        Column("commit", lambda r: r["commits"] or "—", wrap=True),
    ]


TEST_UNITS = {"paired seed": "paired t-test over the distillation seeds both cells share (each seed's network mean)",
              "seed": "Welch t-test, unit: a distillation seed (its networks' mean)",
              "network": "Welch t-test, unit: one evaluation network"}


def row_facets(row: pd.Series) -> dict:
    return {"dataset": row.get("dataset"), "ipc": row.get("ipc"), "arch": row.get("arch")}


def formatted_rows(formatted: pd.DataFrame, facets_of: Callable[[pd.Series], dict], table_id: str) -> str:
    return table(formatted, formatted_columns(formatted), facets_of, table_id)


def figure(report: Report, f: Figure) -> str:
    attrs = facet_attrs({"dataset": f.dataset, "ipc": f.ipc, "arch": f.arch})
    src = esc(report.relative(f))
    return (f'<figure class="facet"{attrs}><a href="{src}"><img src="{src}" alt="{esc(f.title)}"></a>'
            f"<figcaption>{esc(f.title)}</figcaption></figure>")


def figures(report: Report, kinds: Iterable[str]) -> str:
    items = [figure(report, f) for kind in kinds for f in report.figures_of(kind)]
    return f'<div class="figures">{"".join(items)}</div>' if items else "<p>No figures yet.</p>"


def options(values: Iterable[object]) -> str:
    """``<option>``s of the distinct values, numbers in numeric order (IPC 0, "whole", is no choice)."""
    texts = {str(v) for v in values if v not in (None, "", 0) and not (isinstance(v, float) and math.isnan(v))}
    ordered = sorted(texts, key=lambda t: (not t.isdigit(), int(t) if t.isdigit() else 0, t))
    return "".join(f'<option value="{esc(t)}">{esc(t)}</option>' for t in ordered)


def filter_bar(report: Report) -> str:
    s = report.summary
    choices = {"dataset": list(s["dataset"]) + list(report.costs["dataset"]) + list(report.nas["dataset"]),
               "ipc": list(s["ipc"]) + [f.ipc for f in report.figures], "arch": list(s["arch"])}
    selects = "".join(f'<label>{label} <select id="filter-{facet}" data-facet="{facet}"><option value="">all</option>'
                      f"{options(choices[facet])}</select></label>"
                      for facet, label in (("dataset", "Dataset"), ("ipc", "IPC"), ("arch", "Architecture")))
    return f'<nav id="filters">{selects}<span id="shown"></span></nav>'


def sections(report: Report) -> list[tuple[str, str, str]]:
    """(id, title, inner HTML) of every section, in reading order."""
    s, out = report.summary, []
    out.append(("results", "All results", f"<p>{esc(plain(LEGEND))} One row per dataset, method, IPC, architecture and "
                "protocol; hover a protocol for its settings.</p>" + table(s, results_columns(report), row_facets,
                                                                            "results-table")))
    tables = "".join(frame_table(pivot(s, arch, protocol, accuracy_cell, report.failures), "method",
                                 f"{arch}, protocol {protocol}", {"arch": arch})
                     for arch, protocol in table_positions(s))
    out.append(("tables", "Accuracy tables", tables or "<p>No finished evaluations yet.</p>"))
    if not report.ablations.empty:
        out.append(("ablations", "Against its ablations", f"<p>{esc(plain(ABLATIONS + TESTS))}</p>" + formatted_rows(
            ablation_table(report.ablations), lambda r: {"dataset": r["dataset"], "ipc": r["IPC"], "arch": r["arch"]},
            "ablation-table")))
    if report.cross_arch:
        out.append(("cross-arch", "Cross-architecture generalisation", "".join(
            frame_table(t, "method", f"{d} ipc={i}, protocol {p}", {"dataset": d, "ipc": i})
            for (d, i, p), t in report.cross_arch)))
    if not report.costs.empty:
        ipcs = ", ".join(map(str, serving_cost.SERVING_IPCS))
        out.append(("costs", f"Cost of serving IPC {ipcs}", "<p>Pixel methods: one distillation per IPC, every set "
                    "kept; generators: one distillation, parameters kept, one sampling per IPC. A one-time stage (GAN "
                    "pre-training, expert buffer) counts once at its full cost, cached or not.</p>"
                    + formatted_rows(cost_table(report.costs), lambda r: {"dataset": r["dataset"]}, "cost-table")))
    if not report.nas.empty:
        out.append(("nas", "Architecture search on distilled sets", formatted_rows(
            nas_table(report.nas), lambda r: {"dataset": r["dataset"], "ipc": r["ipc"]}, "nas-table")))
    if not report.sensitivity.empty:
        sens = report.sensitivity.assign(accuracy=report.sensitivity.apply(accuracy_cell, axis=1))
        cols = ["dataset", "method", "ipc", "arch", "protocol", "hparam", "value", "accuracy", "n", "held"]
        out.append(("sensitivity", "Sensitivity to hyper-parameters", figures(report, ["sensitivity"])
                    + formatted_rows(sens[cols].astype(str), lambda r: {"dataset": r["dataset"], "ipc": r["ipc"],
                                                                        "arch": r["arch"]}, "sensitivity-table")))
    out.append(("plots", "Plots", figures(report, ["accuracy-vs-ipc", "accuracy-vs-cost"])))
    grids = figures(report, ["synthetic-set"]) + "".join(f"<p>Not drawn: {esc(p)}</p>" for p in report.image_problems)
    out.append(("images", "Synthetic sets (one row per class)", grids))
    if not report.provenance.empty:
        out.append(("provenance", "How these numbers were produced",
                    table(report.provenance, [Column(c, lambda r, c=c: r[c], wrap=c in WRAPPED)
                                              for c in report.provenance.columns])))
    out.append(("protocols", "Protocols", "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>"
                                                           for k, v in report.protocols.items()) + "</dl>"))
    if not report.failures.empty:
        failed = report.failures.fillna("")
        out.append(("failures", "Failed cells", table(failed, [Column(c, lambda r, c=c: r[c]) for c in
                                                                ("stage", "label", "error")], row_facets, "failures")))
    return out


def caveat(warning: Caveat) -> str:
    """A warning as one line; the cells it names (dozens, after a regeneration) folded under it."""
    text = f"⚠ {esc(plain(warning.text))}"
    if warning.cells:
        text += (f'. <details><summary>Show them ({len(warning.cells)})</summary>{esc(plain(", ".join(warning.cells)))}'
                 "</details>")
    return f'<div class="warning">{text}</div>'


def render(report: Report) -> str:
    c = report.counts
    parts = sections(report)
    nav = " · ".join(f'<a href="#{ident}">{esc(title)}</a>' for ident, title, _ in parts)
    body = "".join(f'<section id="{ident}"><h2>{esc(title)}</h2>{inner}</section>' for ident, title, inner in parts)
    warnings = "".join(map(caveat, report.warnings))
    counts = (f"{c['distillations']} distillations, {c['evaluations']} evaluations, {c['nas']} NAS runs, "
              f"{c['failures']} failed cells")
    return PAGE.format(header=esc(plain(HEADER)), counts=esc(counts), warnings=warnings, nav=nav,
                       filters=filter_bar(report), body=body, script=SCRIPT, style=STYLE)


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:0 1rem 4rem;color:#222}
h1{margin:.8rem 0 .2rem}h2{border-bottom:1px solid #ccc;margin-top:2rem}
#filters{position:sticky;top:0;background:#f6f6f6;border:1px solid #ddd;padding:.4rem .6rem;z-index:1;display:flex;
gap:1rem;align-items:center;flex-wrap:wrap}#shown{color:#666;margin-left:auto}
table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:13px}
caption{text-align:left;font-weight:600;padding:.2rem 0}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:left;white-space:nowrap}
td.wrap{white-space:normal;min-width:14rem}.scroll{overflow-x:auto}
th{background:#eee;cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}tbody tr:nth-child(even){background:#fafafa}
.hidden{display:none!important}
.warning{background:#fff4d6;border-left:4px solid #e0a800;padding:.3rem .6rem;margin:.3rem 0}
.warning details{display:inline}.warning summary{cursor:pointer;color:#735c00}
.figures{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;max-width:640px}
figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:12px;color:#555;overflow-wrap:anywhere}dt{font-weight:600}
"""

SCRIPT = """
(function () {
  "use strict";
  var FACETS = %FACETS%;
  function sortValue(cell) {
    var v = cell.getAttribute("data-v");
    return v === null ? null : parseFloat(v);
  }
  function sortTable(table, index, th) {
    var body = table.tBodies[0];
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index], y = b.cells[index];
      var vx = sortValue(x), vy = sortValue(y), order;
      if (vx !== null && vy !== null) { order = vx - vy; }
      else if (vx !== null) { return -1; }
      else if (vy !== null) { return 1; }
      else { order = x.textContent.localeCompare(y.textContent, undefined, {numeric: true}); }
      return ascending ? order : -order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.addEventListener("click", function () { sortTable(table, index, th); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortTable(table, index, th); } });
    });
  });
  function applyFilters() {
    var wanted = {};
    FACETS.forEach(function (f) { wanted[f] = document.getElementById("filter-" + f).value; });
    var shown = 0;
    document.querySelectorAll(".facet").forEach(function (el) {
      var visible = FACETS.every(function (f) {
        var have = el.getAttribute("data-" + f);
        return !wanted[f] || have === null || have === wanted[f];
      });
      el.classList.toggle("hidden", !visible);
      if (visible && el.closest("#results-table")) { shown += 1; }
    });
    document.getElementById("shown").textContent = shown + " result rows shown";
  }
  FACETS.forEach(function (f) { document.getElementById("filter-" + f).addEventListener("change", applyFilters); });
  applyFilters();
})();
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>D2M-Bench leaderboard</title>
<style>{style}</style>
</head>
<body>
<header><h1>D2M-Bench leaderboard</h1><p>{header}</p><p>Store: {counts}.</p>{warnings}<p>{nav}</p></header>
{filters}
{body}
<script>{script}</script>
</body>
</html>
"""
SCRIPT = SCRIPT.replace("%FACETS%", json.dumps(FACETS))
