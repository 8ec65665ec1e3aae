"""The results store as tables: one row per evaluation, per distillation and per failure.

Every reader here tolerates partial stores: a record without the fields a table needs is skipped (and
counted), never a crash, so a report renders from whatever has finished.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Collection
from typing import Any

import pandas as pd

from benchmark.data.registry import dataset_spec
from benchmark.distiller import get_distiller
from benchmark.errors import BenchmarkError
from benchmark.protocol import RECORDED_OFF_DEFAULT
from benchmark.reports.stages import split_wall_time
from benchmark.store import ResultsStore

KEYS = ["dataset", "method", "variant", "ipc", "arch", "protocol"]
SUMMARY_COLUMNS = [*KEYS, "mean", "std", "n", "seeds", "budget", "distill_seconds", "storage_bytes", "sample_seconds",
                   "eval_seconds", "device", "hparams", "commits"]


def commit_of(record: dict[str, Any]) -> str | None:
    """Short commit of the code that produced a record, ``+dirty`` when the checkout had local changes."""
    git = (record.get("provenance") or {}).get("git") or {}
    commit = git.get("commit")
    if not commit:
        return None
    return commit[:10] + ("+dirty" if git.get("dirty") else "")


def canonical(value: object) -> str:
    """A JSON value as one comparable string (dict keys sorted)."""
    return json.dumps(value, sort_keys=True)


def varying_keys(settings: Collection[dict]) -> set[str]:
    """The keys whose values differ between the dicts of ``settings``."""
    names = set().union(*settings)
    return {k for k in names if len({canonical(s.get(k)) for s in settings}) > 1}


def settings_label(settings: dict, names: list[str]) -> str:
    """``"a=1,b=2"``: the values of ``names`` in ``settings``."""
    return ",".join(f"{k}={settings.get(k)}" for k in names)


def preset_defaults(method: str, dataset: str, ipc: int | None, budget: str) -> dict | None:
    """Today's resolved hyper-parameters of ``method`` for that cell, as the JSON a record stores; None when
    they cannot be resolved here (a method or dataset not registered in this process, a refused IPC)."""
    try:
        hparams = get_distiller(method).resolve_hparams(dataset_spec(dataset), ipc, budget)
    except (BenchmarkError, TypeError, ValueError):
        return None
    return json.loads(json.dumps(dataclasses.asdict(hparams)))


def departures(settings: dict, defaults: dict | None) -> str | None:
    """``"a=1,b=2"``: the values of ``settings`` that differ from ``defaults``; None when the defaults are
    unknown or ``settings`` has names they lack (another code version's or another plugin's layout)."""
    if defaults is None or not set(settings) <= set(defaults):
        return None
    changed = sorted(k for k in settings if canonical(settings[k]) != canonical(defaults[k]))
    return settings_label(settings, changed)


def labels_by_departure(group: pd.DataFrame, settings: pd.Series) -> pd.Series | None:
    """Each distillation named by what it changes from today's preset defaults (a sweep's default point is the
    plain method name); None when a record cannot be compared or two different settings would share a name
    at one IPC (e.g. a ``paper`` and a ``cpu-small`` budget, each at its own defaults)."""
    labels = {}
    for index, row in group.iterrows():
        defaults = preset_defaults(row["method"], row["dataset"], int(row["ipc"]) or None, row["budget"])
        labels[index] = departures(settings[index], defaults)
    if any(label is None for label in labels.values()):
        return None
    named: dict[tuple, str] = {}  # rows are pooled per IPC: one name, one setting there
    for index, label in labels.items():
        hparams = group.at[index, "hparams"]
        if named.setdefault((group.at[index, "ipc"], label), hparams) != hparams:
            return None
    return pd.Series(labels, dtype=object)


def variant_labels(frame: pd.DataFrame) -> pd.Series:
    """Name hyper-parameter variants of a method (sweeps, superseded presets) by what they change.

    Preferably by the values that depart from today's preset defaults (:func:`labels_by_departure`), so a
    name means the same on every dataset; otherwise by the values that differ between the method's records
    of that dataset *at the same IPC*: methods whose defaults depend on the IPC (DC's loop counts, MTT's
    trajectory lengths) are one variant, not one per IPC.
    """
    labels = pd.Series("", index=frame.index, dtype=object)
    for _, group in frame.groupby(["dataset", "method"]):
        settings = group["hparams"].map(json.loads)
        by_departure = labels_by_departure(group, settings)
        if by_departure is not None:
            labels[group.index] = by_departure
            continue
        names = sorted(set().union(*(varying_keys(same_ipc) for _, same_ipc in settings.groupby(group["ipc"]))))
        if names:
            labels[group.index] = settings.map(lambda s, names=names: settings_label(s, names))
    return labels


def rows_of(store: ResultsStore, stage: str, row: Callable[[dict], dict]) -> list[dict]:
    """``row(record)`` for every record of ``stage``; a record lacking a field the table needs (an older or
    foreign layout, a hand-edited file) is left out rather than stopping the report."""
    rows = []
    for record in store.records(stage):
        try:
            rows.append(row(record))
        except (KeyError, TypeError, AttributeError, ValueError):
            continue
    return rows


def distill_row(r: dict) -> dict:
    config, result, cost = r["config"], r.get("result") or {}, r.get("cost") or {}
    return {
        "key": r["key"], "dataset": config["dataset"], "method": config["method"], "ipc": config.get("ipc") or 0,
        "seed": config.get("seed"), "budget": config.get("budget"),
        "hparams": canonical(config.get("hparams", {})),
        "serves_any_ipc": bool(result.get("serves_any_ipc")), "ipc_independent": bool(result.get("ipc_independent")),
        "storage_bytes": result.get("storage_bytes"), "wall_seconds": cost.get("wall_seconds"),
        **split_wall_time(result, cost.get("wall_seconds")), "peak_memory_bytes": cost.get("peak_memory_bytes"),
        "peak_memory_kind": cost.get("peak_memory_kind"), "device": cost.get("device"),
        "device_name": (r.get("provenance") or {}).get("device"), "commit": commit_of(r),
        "artifact_sha256": result.get("artifact_sha256"), **starting_generator(result), **regeneration(r),
    }


def regeneration(r: dict) -> dict:
    """When the record was written and, if it regenerated a missing artifact, whether that is known to have
    reproduced the replaced one (both checksums recorded and equal)."""
    replaced = r.get("replaces")
    previous = ((replaced or {}).get("result") or {}).get("artifact_sha256")
    return {"finished": r.get("finished"), "regenerated": replaced is not None,
            "reproduced": previous is not None and previous == (r.get("result") or {}).get("artifact_sha256")}


def read_before_regeneration(finished: object, distillation: dict) -> bool:
    """Written (at ``finished``) before its distillation was regenerated, by a regeneration not known to reproduce
    the replaced artifact: what it read may differ from the artifact the record now describes."""
    if not distillation.get("regenerated") or distillation.get("reproduced"):
        return False
    after = distillation.get("finished")
    if not (isinstance(finished, str) and isinstance(after, str)):
        return False  # a record without a time (NaN in the frame) cannot be placed before the regeneration
    return dt.datetime.fromisoformat(finished) < dt.datetime.fromisoformat(after)


def starting_generator(result: dict) -> dict:
    """Which cached pre-trained generator a generator method started from: the cache entry, whether this run
    trained it, and its checksum (records from 2026-11-27 on)."""
    pretrain = (result.get("artifact") or {}).get("pretrain") or {}
    return {"pretrain_file": pretrain.get("cache_file"), "pretrain_source": pretrain.get("source"),
            "pretrain_sha256": pretrain.get("sha256")}


def distill_frame(store: ResultsStore) -> pd.DataFrame:
    """One row per distillation record: its cost, its artifact's storage, and its variant label."""
    frame = pd.DataFrame(rows_of(store, "distill", distill_row))
    if not frame.empty:
        frame["variant"] = variant_labels(frame)
    return frame


def eval_row(r: dict, distills: dict[str, dict]) -> dict:
    """An evaluation (or NAS) record with the distillation it trained on; no accuracies → KeyError."""
    config, cost = r["config"], r.get("cost") or {}
    accuracies = [float(a) for a in r["result"]["accuracies"]]
    if not accuracies:
        raise KeyError("accuracies")
    d = distills.get(config.get("distill_key"), {})
    read, current = r["result"].get("artifact_sha256"), d.get("artifact_sha256")
    current = current if isinstance(current, str) else None  # a record from before checksums: NaN in the frame
    return {
        "dataset": config["dataset"], "method": config["method"], "variant": d.get("variant", ""),
        "ipc": config.get("ipc") or 0, "arch": config["arch"], "protocol": config["protocol"]["name"],
        "protocol_name": config["protocol"]["name"], "protocol_values": protocol_values(config["protocol"]),
        "protocol_description": config["protocol"].get("description", ""), "seed": config.get("sample_seed"),
        "distill_key": config.get("distill_key"), "hparams": d.get("hparams", "{}"), "budget": d.get("budget"),
        "accuracies": accuracies, "distill_seconds": from_scratch_seconds(d),
        "distill_peak_memory": d.get("peak_memory_bytes"), "storage_bytes": d.get("storage_bytes"),
        "serves_any_ipc": d.get("serves_any_ipc"), "sample_seconds": cost.get("sample_seconds"),
        "eval_seconds": cost.get("wall_seconds"), "device": cost.get("device"), "commit": commit_of(r),
        "final_train_loss": mean_or_none(pd.Series(r["result"].get("final_train_loss") or [], dtype=float)),
        "earlier_artifact": bool(read and current and read != current),  # its distillation was regenerated since
        "unknown_artifact": not read and read_before_regeneration(r.get("finished"), d),  # no checksum to compare
    }


def mean_or_none(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.mean()) if len(values) else None


def from_scratch_seconds(distillation: dict) -> float | None:
    """What the distillation costs on an empty cache: its own time plus its one-time stage's full cost."""
    own = distillation.get("own_seconds")
    return None if own is None or pd.isna(own) else float(own) + float(distillation.get("stage_seconds") or 0.0)


def by_key(distills: pd.DataFrame) -> dict[str, dict]:
    return {row["key"]: row for row in distills.to_dict("records")} if not distills.empty else {}


def protocol_values(protocol: dict) -> str:
    """A protocol record's settings (everything but its name and description, with the fields a record leaves
    out at their defaults filled in) as canonical JSON."""
    values = {**RECORDED_OFF_DEFAULT, **protocol}
    return canonical({k: v for k, v in values.items() if k not in ("name", "description")})


def protocol_labels(frame: pd.DataFrame, others: pd.DataFrame | None = None) -> pd.Series:
    """The protocol name, qualified by the values that differ between rows sharing that name (in ``frame``
    and ``others``: the failed cells, so a failure is labelled like the records of the table it belongs to).

    A grid may override a named protocol (``--models 3``): such records must not be pooled with the
    protocol's defaults in one table, so ``smoke`` and ``smoke [models=3]`` become separate columns/tables."""
    columns = ["protocol_name", "protocol_values"]
    pool = frame[columns] if others is None or others.empty else pd.concat([frame[columns], others[columns]])
    labels = frame["protocol_name"].copy()
    for name, group in pool.dropna().groupby("protocol_name"):
        names = sorted(varying_keys(group["protocol_values"].map(json.loads)))
        mine = frame["protocol_name"] == name
        if names and mine.any():
            labels[mine] = frame.loc[mine, "protocol_values"].map(
                lambda v, name=name, names=names: f"{name} [{settings_label(json.loads(v), names)}]")
    return labels


def records_frame(store: ResultsStore, distills: pd.DataFrame | None = None,
                  failures: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per evaluation record, joined with the distillation it evaluated (cost, variant label); the
    protocol column tells overridden protocol values apart (:func:`protocol_labels`, compared with the
    ``failures`` too when given, so both frames get the same labels)."""
    known = by_key(distill_frame(store) if distills is None else distills)
    frame = pd.DataFrame(rows_of(store, "eval", lambda r: eval_row(r, known)))
    if not frame.empty:
        frame["protocol"] = protocol_labels(frame, failures)
    return frame


def joined(values: pd.Series) -> str:
    return ",".join(sorted({str(v) for v in values.dropna()}))


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over every evaluation network of a (dataset, method, variant, IPC, arch, protocol)."""
    if frame.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    rows = []
    for key, group in frame.groupby(KEYS, sort=True):
        accs = pd.Series([a for accs in group["accuracies"] for a in accs], dtype=float)
        rows.append({**dict(zip(KEYS, key, strict=True)), "mean": accs.mean(), "std": accs.std(ddof=0), "n": len(accs),
                     "seeds": group["seed"].nunique(), "budget": joined(group["budget"]),
                     "distill_seconds": group["distill_seconds"].mean(), "storage_bytes": group["storage_bytes"].mean(),
                     "sample_seconds": group["sample_seconds"].mean(), "eval_seconds": group["eval_seconds"].mean(),
                     "device": joined(group["device"]), "hparams": group["hparams"].iloc[0],
                     "commits": joined(group["commit"])})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def accuracies_by_key(frame: pd.DataFrame) -> dict[tuple, dict[object, list[float]]]:
    """Per summary key, the evaluation networks' accuracies of each distillation seed, by seed (what the
    significance tests compare, paired by seed, by seed or by network: :func:`benchmark.reports.stats.compare`)."""
    if frame.empty:
        return {}
    return {key: {seed: [a for accs in by_seed["accuracies"] for a in accs] for seed, by_seed in group.groupby("seed")}
            for key, group in frame.groupby(KEYS)}


def failure_frame(store: ResultsStore) -> pd.DataFrame:
    """One row per failed cell: its stage, where it sits in the tables (the protocol's bare name until
    :func:`protocol_labels` qualifies it), and its one-line error."""
    rows = []
    for f in store.failures():
        config = f.get("config", {})
        protocol = config.get("protocol")
        name = protocol.get("name") if isinstance(protocol, dict) else None
        rows.append({"stage": f.get("stage", "?"), "dataset": config.get("dataset"), "method": config.get("method"),
                     "ipc": config.get("ipc") or 0, "arch": config.get("arch"), "protocol": name,
                     "protocol_name": name, "protocol_values": protocol_values(protocol) if name else None,
                     "label": f.get("label", f.get("key", "?")), "error": f.get("error", "")})
    return pd.DataFrame(rows, columns=["stage", "dataset", "method", "ipc", "arch", "protocol", "protocol_name",
                                       "protocol_values", "label", "error"])


def method_label(row: pd.Series | dict) -> str:
    return f"{row['method']} [{row['variant']}]" if row["variant"] else row["method"]


def provenance_frame(store: ResultsStore, stages: tuple[str, ...] = ("distill", "eval", "nas")) -> pd.DataFrame:
    """How the stored numbers were produced: one row per (command, machine, commit, code) with the number of
    records and the dates of the first and last one. *code* is the start of the records' SHA-256 of the
    project's sources (``provenance.code_digest``; "—" before it was recorded): it tells two dirty runs apart."""
    def row(r: dict) -> dict:
        p = r.get("provenance") or {}
        return {"command": p.get("command") or "(not recorded)", "device": p.get("device") or "?",
                "host": p.get("hostname") or "?", "commit": commit_of(r) or "?",
                "code": (p.get("code_sha256") or "—")[:12], "torch": p.get("torch") or "?", "finished": r["finished"]}

    rows = [x for stage in stages for x in rows_of(store, stage, row)]
    keys = ["command", "device", "host", "commit", "code", "torch"]
    columns = [*keys, "records", "first", "last"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(keys, sort=False)["finished"]
    out = grouped.agg(records="size", first="min", last="max").reset_index()
    return out.sort_values("first")[columns].reset_index(drop=True)
