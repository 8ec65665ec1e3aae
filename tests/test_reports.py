"""Reports from hand-made stores: every table's numbers, partial and empty stores, the HTML page."""

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from synthetic_records import StoreBuilder, pixel_set, protocol

from benchmark import leaderboard
from benchmark.data.registry import dataset_spec
from benchmark.distiller import get_distiller
from benchmark.nas import Candidate
from benchmark.reports import markdown, page, plots
from benchmark.reports.build import build_report
from benchmark.reports.frame import distill_frame, records_frame
from benchmark.reports.images import grid_image
from benchmark.reports.nas import nas_frame, nas_summary
from benchmark.reports.serving_cost import serving_costs
from benchmark.reports.tables import FAILED, MISSING


@pytest.fixture
def builder(tmp_path):
    return StoreBuilder(tmp_path / "results")


def test_empty_store_renders_every_report(builder):
    text = leaderboard.write_reports(builder.store.root)
    assert "_No finished evaluations yet._" in text and "0 evaluations" in text
    html = (builder.store.root / "index.html").read_text()
    assert "<table" in html and "No finished evaluations yet." in html


def test_partial_store_marks_missing_and_failed_cells_and_lists_failures(builder):
    random1 = builder.distill("random", 1)
    builder.evaluate(random1, 1, [30.0, 32.0])
    random10 = builder.distill("random", 10)
    builder.evaluate(random10, 10, [80.0, 84.0])
    herding10 = builder.distill("herding", 10)
    builder.fail("eval", "herding", 10)  # its evaluation failed
    builder.fail("distill", "kcenter", 1, arch=None)  # a distillation failed: no evaluation exists
    builder.store.record_path("eval", "garbage").write_text("{not json")  # an unreadable file is skipped
    builder.store.write_record("eval", "partial", {"config": {"dataset": "digits"}})  # so is a partial record
    assert herding10
    text = leaderboard.write_reports(builder.store.root)
    table = text.split("### convnet, protocol `smoke`")[1].split("##")[0]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines() if line.startswith("| ") and "---" not in line and "ipc=" not in line}
    assert rows["random"] == ["31.00 ± 1.00", "82.00 ± 2.00"]
    assert rows["herding"] == [MISSING, FAILED] and rows["kcenter"] == [FAILED, MISSING]
    assert "## Failed cells" in text and "- eval herding digits ipc=10: RuntimeError: simulated" in text
    assert "`full` is missing for digits" in text and "VALIDATION" not in text
    assert "<td>eval herding digits ipc=10</td>" in (builder.store.root / "index.html").read_text()


def test_a_validation_split_is_labelled_as_such(builder, monkeypatch):
    builder.evaluate(builder.distill("random", 1, dataset="val:digits"), 1, [70.0])
    builder.evaluate(builder.distill("random", 1), 1, [60.0])
    y_labels = {}
    real_save = plots.save

    def save(fig, path):
        y_labels[path.name] = {ax.get_ylabel() for ax in fig.axes}
        return real_save(fig, path)

    monkeypatch.setattr(plots, "save", save)
    text = leaderboard.write_reports(builder.store.root)
    assert "> ⚠ val:digits: VALIDATION split(s), a part of the training split held out" in text
    assert "val:digits ipc=1" in text
    assert y_labels["accuracy_vs_ipc_val_digits_convnet_smoke.png"] == {"validation accuracy (%)"}
    assert y_labels["accuracy_vs_ipc_digits_convnet_smoke.png"] == {"test accuracy (%)"}


def test_every_method_keeps_one_style_in_every_figure_and_long_legends_stay_beside_the_axes(builder, monkeypatch):
    """Twelve methods (the default colour cycle repeats after ten) get twelve colours; a method's variant keeps
    its colour with a dashed line and another marker; a variant's long label is wrapped in a legend outside."""
    methods = ["random", "herding", "kcenter", "dc", "dsa", "dm", "datadam", "mtt", "dim", "d2m", "d2m-em", "d2m-pm"]
    for method in methods:
        builder.evaluate(builder.distill(method, 1), 1, [50.0])
        builder.evaluate(builder.distill(method, 10), 10, [60.0])
        builder.evaluate(builder.distill(method, 10), 10, [55.0], arch="alexnet")
    variant = {"lr_img": 10.0, "batch_real": 32, "momentum_img": 0.9, "init": "noise"}
    builder.evaluate(builder.distill("dm", 10, hparams=variant), 10, [61.0])
    drawn = {}
    real_save = plots.save

    def save(fig, path):
        ax = fig.axes[-1]
        drawn[path.name] = ({t.get_text(): None for t in ax.get_legend().get_texts()},
                            {c.get_label(): c.lines[0] for c in ax.containers}, ax.get_legend())
        return real_save(fig, path)

    monkeypatch.setattr(plots, "save", save)
    build_report(builder.store.root)
    legend_texts, lines, box = drawn["accuracy_vs_ipc_digits_convnet_smoke.png"]
    colours = {label: line.get_color() for label, line in lines.items()}
    variant_label = next(label for label in lines if label.startswith("dm ["))
    assert len({colours[m] for m in methods}) == 12 and colours[variant_label] == colours["dm"]
    assert lines[variant_label].get_linestyle() == "--" and lines["dm"].get_linestyle() == "-"
    assert lines[variant_label].get_marker() != lines["dm"].get_marker()
    assert all(len(line) <= plots.LEGEND_WIDTH for text in legend_texts for line in text.split("\n"))
    assert box.get_bbox_to_anchor().x0 > box.axes.bbox.x1  # beside the axes, not over the points
    _, alexnet_lines, _ = drawn["accuracy_vs_ipc_digits_alexnet_smoke.png"]
    assert {m: alexnet_lines[m].get_color() for m in methods} == {m: colours[m] for m in methods}


def test_records_unlike_todays_presets_are_named_by_what_differs_between_them_but_not_by_ipc(builder):
    # hyper-parameters today's dc does not have (an older layout) and a method not installed here
    for ipc, loops in ((1, 1), (10, 10)):  # defaults that depend on the IPC (DC's outer loop)
        builder.evaluate(builder.distill("dc", ipc, hparams={"outer_loop": loops, "lr": 0.1}), ipc, [50.0])
    for temperature in (1.0, 4.0):  # a sweep
        builder.evaluate(builder.distill("plugin", None, serves_any=True, hparams={"temperature": temperature}), 10,
                         [60.0])
    frame = records_frame(builder.store)
    labels = set(frame["method"] + "/" + frame["ipc"].astype(str) + "/" + frame["variant"])
    assert labels == {"dc/1/", "dc/10/", "plugin/10/temperature=1.0", "plugin/10/temperature=4.0"}


def resolved(method: str, dataset: str, ipc: int | None, budget: str = "cpu-small", **overrides) -> dict:
    """The hyper-parameters a grid cell records for ``method`` today, with ``overrides``."""
    hp = get_distiller(method).resolve_hparams(dataset_spec(dataset), ipc, budget, overrides)
    return json.loads(json.dumps(dataclasses.asdict(hp)))


def test_variants_are_named_by_what_they_change_from_todays_presets_on_every_dataset(builder):
    for dataset in ("digits", "mnist"):  # a superseded start (noise) beside today's preset (real images)
        for ipc in (1, 10):  # the IPC-dependent loop counts are defaults, not variants
            builder.evaluate(builder.distill("dc", ipc, dataset=dataset, hparams=resolved("dc", dataset, ipc,
                                                                                          init="noise")), ipc, [40.0])
        if dataset == "digits":
            builder.evaluate(builder.distill("dc", 10, dataset=dataset, hparams=resolved("dc", dataset, 10)), 10, [90.0])
    for temperature in (1.0, 4.0):  # a sweep whose base point is the default: the plain name
        hp = resolved("d2m", "digits", None, temperature=temperature)
        builder.evaluate(builder.distill("d2m", None, serves_any=True, hparams=hp), 10, [60.0])
    for budget in ("paper", "cpu-small"):  # each at its own defaults: both plain would merge them, so the
        hp = resolved("dm", "digits", 1, budget)  # dataset falls back to naming what differs between them
        builder.evaluate(builder.distill("dm", 1, budget=budget, hparams=hp), 1, [70.0])
    frame = records_frame(builder.store)
    labels = set(frame["dataset"] + "/" + frame["method"] + "/" + frame["ipc"].astype(str) + "/" + frame["variant"])
    assert labels == {"digits/dc/1/init=noise", "digits/dc/10/init=noise", "digits/dc/10/", "mnist/dc/1/init=noise",
                      "mnist/dc/10/init=noise", "digits/d2m/10/", "digits/d2m/10/temperature=1.0",
                      "digits/dm/1/batch_real=256,iterations=20000", "digits/dm/1/batch_real=64,iterations=20"}


def test_a_protocol_overridden_by_a_grid_gets_its_own_table_instead_of_being_pooled(builder):
    key = builder.distill("random", 10)
    builder.evaluate(key, 10, [80.0])  # the smoke protocol as named (2 models in these tests)
    sweep = {"protocol": {**protocol("smoke"), "models": 3}}  # a grid's --models 3 on the same protocol name
    builder.evaluate(key, 10, [70.0, 72.0, 74.0], extra_config=sweep)
    builder.evaluate(builder.distill("random", 1), 1, [30.0], protocol_name="paper")  # alone under its name
    builder.fail("eval", "herding", 10, protocol_overrides={"models": 3})  # a failure under the override
    assert set(records_frame(builder.store)["protocol"]) == {"smoke [models=2]", "smoke [models=3]", "paper"}
    text = leaderboard.write_reports(builder.store.root)
    assert "80.00 ± 0.00" in text.split("protocol `smoke [models=2]`")[1].split("###")[0]
    overridden = text.split("protocol `smoke [models=3]`")[1].split("###")[0]
    assert "72.00 ± 1.63" in overridden
    assert FAILED in overridden and FAILED not in text.split("protocol `smoke [models=2]`")[1].split("###")[0]


def test_a_protocol_field_a_record_leaves_out_at_its_default_is_labelled_by_that_default(builder):
    """Records leave ``use_set_lr`` out at its default (keys of earlier cells hold); beside records that turn it
    off, they are labelled by the default (True), not by a missing value (None)."""
    key = builder.distill("mtt", 10)
    builder.evaluate(key, 10, [80.0])
    builder.evaluate(key, 10, [75.0], extra_config={"protocol": {**protocol("smoke"), "use_set_lr": False}})
    assert set(records_frame(builder.store)["protocol"]) == {"smoke [use_set_lr=True]", "smoke [use_set_lr=False]"}


def test_a_method_is_compared_with_its_ablations_paired_by_seed(builder):
    generator = resolved("d2m", "digits", None)
    for seed, (full, ablated) in enumerate(((70.0, 66.0), (80.0, 77.0), (75.0, 70.0))):
        builder.evaluate(builder.distill("d2m", None, seed=seed, serves_any=True, hparams=generator), 1,
                         [full, full + 1])
        builder.evaluate(builder.distill("d2m-gen", None, seed=seed, serves_any=True, hparams=generator), 1,
                         [ablated, ablated + 1])
    builder.evaluate(builder.distill("random", 1), 1, [60.0, 62.0])
    text = leaderboard.write_reports(builder.store.root)
    section = text.split("## Against its ablations")[1].split("\n## ")[0]
    row = next(line for line in section.splitlines() if "| d2m " in line)
    assert "| 75.50 " in row and "| 71.50 " in row and "+4.00 [" in row and "(paired seeds)" in row
    gains = text.split(": gain over random")[1].split("###")[0]
    assert "+14.50 [" in gains and "seed" not in gains  # random ran one seed: d2m's gain is tested by network
    html = (builder.store.root / "index.html").read_text()
    assert 'id="ablation-table"' in html and "paired seeds" in html


def test_serving_cost_pixel_methods_sum_generators_sample(builder):
    for seed, seconds in ((0, 10.0), (1, 20.0)):  # IPC 1: mean 15 s
        builder.evaluate(builder.distill("dc", 1, seed, seconds=seconds, storage=1000), 1, [50.0])
    builder.distill("dc", 10, seconds=30.0, storage=10_000, peak=5 * 2**20)
    builder.distill("dc", 50, seconds=100.0, storage=50_000)
    builder.distill("dm", 1, seconds=3.0, storage=1000)
    builder.distill("dm", 10, seconds=4.0, storage=10_000)  # dm has no IPC 50 yet
    d2m = [builder.distill("d2m", None, seed, seconds=s, storage=5_000_000, serves_any=True)
           for seed, s in ((0, 200.0), (1, 300.0))]  # mean 250 s
    builder.evaluate(d2m[0], 1, [40.0], sample_seconds=0.5)
    builder.evaluate(d2m[0], 10, [60.0], sample_seconds=1.0)
    builder.evaluate(d2m[1], 10, [62.0], sample_seconds=3.0)  # IPC 10 sampling: mean 2 s
    builder.evaluate(d2m[0], 10, [55.0], arch="mlp", sample_seconds=2.0)
    builder.evaluate(d2m[0], 50, [70.0], sample_seconds=4.0)
    builder.evaluate(builder.distill("full", None, serves_any=True, storage=0), None, [99.0])
    builder.distill("full", None, serves_any=True, storage=0, ipc_independent=True, dataset="mnist")  # not evaluated yet
    distills = distill_frame(builder.store)
    costs = serving_costs(distills, records_frame(builder.store, distills)).set_index("method")
    assert "full" not in costs.index  # IPC-independent: nothing to serve per IPC (even before its evaluation)
    dc, dm, gen = costs.loc["dc"], costs.loc["dm"], costs.loc["d2m"]
    assert (dc["kind"], dc["distillations"], dc["total_seconds"], dc["storage_bytes"]) == ("pixels", 3, 145.0, 61_000)
    assert dc["peak_memory_bytes"] == 5 * 2**20 and dc["missing"] == "" and pd.isna(dc["sample_seconds"])
    sampling = 0.5 + (1.0 + 3.0 + 2.0) / 3 + 4.0  # IPC 10 averages every evaluation's sampling
    assert gen["kind"] == "generator" and gen["distillations"] == 1 and gen["storage_bytes"] == 5_000_000
    assert gen["distill_seconds"] == 250.0 and gen["total_seconds"] == pytest.approx(250.0 + sampling)
    assert dc["time_vs_ref"] == pytest.approx(145.0 / (250.0 + sampling))
    assert dc["storage_vs_ref"] == pytest.approx(61_000 / 5_000_000) and gen["time_vs_ref"] == pytest.approx(1.0)
    assert (dm["total_seconds"], dm["storage_bytes"], dm["missing"]) == (7.0, 11_000, "50")
    text = markdown.render(build_report(builder.store.root, draw=False))
    dc_row = next(line for line in text.splitlines() if line.startswith("| digits    | dc "))
    assert re.search(r"\| pixels +\| cpu-small +\| cpu \(test, 1 threads\) +\| 3 +\| — +\| 2.42 min", dc_row)


def test_serving_cost_counts_a_cached_one_time_stage_once_at_full_cost_whoever_paid_it(builder):
    gan = {"cache_file": "digits-x.pt", "seconds": 100.0}
    builder.distill("d2m", None, seconds=130.0, serves_any=True,  # this run pre-trained the GAN: 30 s its own
                    artifact_info={"pretrain": {**gan, "source": "trained"}})
    builder.distill("d2m-gen", None, seconds=60.5, serves_any=True,  # the same generator, read from the cache
                    artifact_info={"pretrain": {**gan, "source": "cache", "waited_seconds": 60.0}})  # once d2m's
    # concurrent pre-training (which it waited for) had finished: the wait is not d2m-gen's own time
    builder.distill("d2m-scratch", None, seconds=20.0, serves_any=True,
                    artifact_info={"pretrain": {"source": "random init", "seconds": 0.0}})
    for ipc, wall, now in ((1, 80.0, 50.0), (10, 40.0, 0.0)):  # MTT: IPC 1 built the expert buffer
        builder.distill("mtt", ipc, seconds=wall, artifact_info={"buffer": {"build_seconds_total": 50.0,
                                                                            "build_seconds_now": now}})
    builder.distill("dim", None, seconds=17.0, serves_any=True, artifact_info={  # cached GAN and model pool
        "gan": {"seconds": 200.0, "built_now": False, "waited_seconds": 4.0},
        "pool": {"convnet": {"build_seconds_total": 20.0, "build_seconds_now": 0.0, "waited_seconds": 3.0}}})
    builder.distill("dm", 1, seconds=3.0)  # no stage
    distills = distill_frame(builder.store)
    costs = serving_costs(distills, records_frame(builder.store, distills)).set_index("method")
    expected = {"d2m": (100.0, 30.0), "d2m-gen": (100.0, 0.5), "d2m-scratch": (0.0, 20.0), "mtt": (50.0, 70.0),
                "dim": (220.0, 10.0), "dm": (0.0, 3.0)}
    for method, (stage, own) in expected.items():
        row = costs.loc[method]
        assert (row["stage_seconds"], row["distill_seconds"], row["total_seconds"]) == (stage, own, stage + own), method
    assert costs.loc["d2m-gen", "time_vs_ref"] == pytest.approx(100.5 / 130.0)
    table = markdown.cost_table(costs.reset_index()).set_index("method")
    assert table.loc["d2m", "one-time stage"] == "100 s" and table.loc["dm", "one-time stage"] == MISSING


def test_cross_architecture_table_reports_the_drop_from_convnet(builder):
    for method, convnet, alexnet in (("random", [80.0, 82.0], [70.0, 72.0]), ("dm", [90.0, 90.0], [85.0, 87.0])):
        key = builder.distill(method, 10)
        builder.evaluate(key, 10, convnet)
        builder.evaluate(key, 10, alexnet, arch="alexnet")
    builder.evaluate(builder.distill("herding", 10), 10, [88.0])  # a method not yet taken off ConvNet: a row
    builder.evaluate(builder.distill("dm", 10, hparams={"lr_img": 10.0}), 10, [91.0])  # a variant: none
    report = build_report(builder.store.root, draw=False)
    ((where, table),) = report.cross_arch
    assert where == ("digits", 10, "smoke") and list(table.columns) == ["convnet", "alexnet", "mean drop"]
    assert list(table.index) == ["dm", "herding", "random"] and table.loc["herding", "alexnet"] == MISSING
    assert table.loc["random", "alexnet"] == "71.00 ± 1.00 (-10.00)" and table.loc["random", "mean drop"] == "10.00"
    assert table.loc["dm", "alexnet"] == "86.00 ± 1.00 (-4.00)"
    assert "Cross-architecture generalisation" in markdown.render(report)


def test_cross_architecture_rows_with_different_architectures_are_compared_on_the_shared_ones(builder):
    # random was also run on ResNet-18, which costs it nothing; its all-architecture mean would flatter it
    runs = {"random": {"convnet": 90.0, "alexnet": 80.0, "resnet18": 90.0}, "dm": {"convnet": 95.0, "alexnet": 89.0}}
    for method, accuracies in runs.items():
        key = builder.distill(method, 10)
        for arch, accuracy in accuracies.items():
            builder.evaluate(key, 10, [accuracy, accuracy], arch=arch)
    ((_, table),) = build_report(builder.store.root, draw=False).cross_arch
    assert list(table.columns) == ["convnet", "alexnet", "resnet18", "mean drop", "mean drop (alexnet)"]
    assert table.loc["random", "mean drop"] == "5.00" and table.loc["random", "mean drop (alexnet)"] == "10.00"
    assert table.loc["dm", "mean drop"] == table.loc["dm", "mean drop (alexnet)"] == "6.00"


def test_cross_architecture_drop_compares_the_same_distillation_seeds(builder):
    # ConvNet has seeds 0 and 1 (80, 90); AlexNet only seed 0 (70): the drop is 80 - 70, not 85 - 70
    for seed, convnet in ((0, 80.0), (1, 90.0)):
        key = builder.distill("random", 10, seed=seed)
        builder.evaluate(key, 10, [convnet, convnet])
        if seed == 0:
            builder.evaluate(key, 10, [70.0, 70.0], arch="alexnet")
    builder.evaluate(builder.distill("dm", 10, seed=1), 10, [60.0, 60.0], arch="alexnet")  # no ConvNet seed 1
    ((_, table),) = build_report(builder.store.root, draw=False).cross_arch
    assert table.loc["random", "convnet"] == "85.00 ± 5.00"
    assert table.loc["random", "alexnet"] == "70.00 ± 0.00 (-10.00)" and table.loc["random", "mean drop"] == "10.00"
    assert table.loc["dm", "alexnet"] == "60.00 ± 0.00" and table.loc["dm", "mean drop"] == MISSING


def test_sensitivity_series_hold_the_other_hyper_parameters_at_their_base(builder):
    # a one-at-a-time sweep around T=4, λ=10 (the shared default run once)
    settings = [(4.0, 10.0, 70.0), (1.0, 10.0, 60.0), (8.0, 10.0, 65.0), (4.0, 0.0, 50.0), (4.0, 100.0, 68.0)]
    for t, lam, acc in settings:
        key = builder.distill("d2m", None, serves_any=True, hparams={"temperature": t, "task_balance": lam})
        builder.evaluate(key, 10, [acc - 1, acc + 1])
    report = build_report(builder.store.root)
    series = report.sensitivity
    temperature = series[series["hparam"] == "temperature"]
    assert temperature["value"].tolist() == [1.0, 4.0, 8.0] and temperature["mean"].tolist() == [60.0, 70.0, 65.0]
    assert set(temperature["held"]) == {"task_balance=10.0"}
    balance = series[series["hparam"] == "task_balance"]
    assert balance["value"].tolist() == [0.0, 10.0, 100.0] and balance["mean"].tolist() == [50.0, 70.0, 68.0]
    (figure,) = report.figures_of("sensitivity")
    assert figure.path.is_file() and "Sensitivity to hyper-parameters" in markdown.render(report)


def test_nas_summary_rank_correlation_choice_and_time(builder):
    full, proxy = builder.distill("full", None, serves_any=True), builder.distill("random", 10)
    for width, a, b in ((32, 90.0, 50.0), (64, 80.0, 55.0), (128, 70.0, 40.0), (256, 60.0, 30.0)):
        candidate = {"candidate": Candidate(width=width).as_dict()}
        builder.evaluate(full, None, [a], protocol_name="nas-cpu-small", stage="nas", extra_config=candidate)
        builder.evaluate(proxy, 10, [b], protocol_name="nas-cpu-small", stage="nas", extra_config=candidate)
    (row,) = nas_summary(nas_frame(builder.store)).to_dict("records")
    # full ranks w32 > w64 > w128 > w256, the proxy w64 > w32 > w128 > w256: ρ = 1 − 6·2 / (4·15)
    assert row["spearman"] == pytest.approx(0.8) and row["candidates"] == 4
    assert row["chosen"] == Candidate(width=64).name and row["chosen_full"] == 80.0
    assert (row["best_full"], row["chosen_rank"], row["time_ratio"]) == (90.0, 2, 1.0)
    text = leaderboard.write_reports(builder.store.root)
    assert "Architecture search on distilled sets" in text and "0.800" in text
    assert "nas-cpu-small" not in text.split("## Architecture search")[0]  # NAS runs stay out of the leaderboard


def test_missing_random_is_warned_and_gains_are_marked(builder):
    builder.evaluate(builder.distill("dm", 10), 10, [70.0, 72.0])
    text = leaderboard.write_reports(builder.store.root)
    assert "⚠ `random` is missing at digits ipc=10 convnet protocol smoke" in text
    assert "n/a (no random)" in text


def test_an_evaluation_of_an_earlier_artifact_is_warned(builder):
    key = builder.distill("dm", 10)
    builder.evaluate(builder.distill("random", 10), 10, [80.0])
    same, earlier = builder.evaluate(key, 10, [70.0]), builder.evaluate(key, 10, [71.0], arch="mlp")
    for stage, k, digest in (("distill", key, "b" * 64), ("eval", same, "b" * 64), ("eval", earlier, "a" * 64)):
        record = builder.store.read_record(stage, k)
        record["result"]["artifact_sha256"] = digest
        builder.store.write_record(stage, k, record)
    older = builder.distill("dc", 10)  # a distillation recorded before checksums, evaluated after: no warning
    evaluation = builder.evaluate(older, 10, [60.0])
    record = builder.store.read_record("eval", evaluation)
    record["result"]["artifact_sha256"] = "c" * 64
    builder.store.write_record("eval", evaluation, record)
    text = leaderboard.write_reports(builder.store.root)
    assert ("⚠ 1 evaluation(s) read an earlier artifact of their distillation, regenerated since (checksums differ; "
            "same configuration and seed).\n> <details><summary>Show them (1)</summary>\n>\n> dm digits ipc=10 mlp seed=0 "
            "`smoke`.\n>\n> </details>") in text
    page = (builder.store.root / "index.html").read_text()  # the page folds the list away under the sentence
    assert ("⚠ 1 evaluation(s) read an earlier artifact of their distillation, regenerated since (checksums differ; "
            "same configuration and seed). <details><summary>Show them (1)</summary>dm digits ipc=10 mlp seed=0 smoke"
            "</details>") in page


def test_an_evaluation_from_before_checksums_of_a_since_regenerated_distillation_is_warned(builder):
    """A pre-checksum evaluation of a distillation whose artifact was later regenerated (a clone without the
    artifact) read the replaced artifact; unless the regeneration is known to reproduce it, say so."""
    builder.evaluate(builder.distill("random", 10), 10, [80.0])
    regenerated, reproduced = builder.distill("dm", 10), builder.distill("dc", 10)
    for key in (regenerated, reproduced):
        old = builder.evaluate(key, 10, [70.0], arch="mlp")
        stamped = builder.store.read_record("eval", old)
        builder.store.write_record("eval", old, {**stamped, "finished": "2026-11-26T04:48:22+00:00"})
        previous = builder.store.read_record("distill", key)
        previous["result"]["artifact_sha256"] = "a" * 64 if key == reproduced else None
        record = {**previous, "finished": "2026-11-27T10:09:58+00:00", "replaces": previous}
        record["result"] = {**previous["result"], "artifact_sha256": "a" * 64}
        builder.store.write_record("distill", key, record)
        new = builder.evaluate(key, 10, [71.0], arch="alexnet")  # after the regeneration, with its checksum
        stamped = builder.store.read_record("eval", new)
        stamped["result"]["artifact_sha256"], stamped["finished"] = "a" * 64, "2026-11-27T10:20:00+00:00"
        builder.store.write_record("eval", new, stamped)
    text = leaderboard.write_reports(builder.store.root)
    assert ("⚠ 1 evaluation(s) predate a regeneration of their distillation and recorded no checksum, so they may "
            "have read a different artifact than later evaluations of it.\n> <details><summary>Show them (1)</summary>\n>\n"
            "> dm digits ipc=10 mlp seed=0 `smoke`.") in text
    assert "read an earlier artifact" not in text


def test_evaluations_that_did_not_fit_their_set_are_counted_per_architecture_and_protocol(builder):
    """A set's networks that end far above a fitted loss (the reduced protocol's ViT) are named per architecture
    and protocol; fitted networks, records without losses and `full` (a few epochs over the whole split) are not."""
    random10, dm10 = builder.distill("random", 10), builder.distill("dm", 10)
    builder.evaluate(random10, 10, [90.0], final_train_loss=[0.02, 0.19])  # fitted
    builder.evaluate(random10, 10, [60.0], arch="vit", final_train_loss=[0.18, 1.71])  # mean 0.945
    builder.evaluate(dm10, 10, [61.0], arch="vit", final_train_loss=[0.3, 0.5])  # mean 0.4: fitted enough
    builder.evaluate(dm10, 10, [70.0], arch="mlp")  # no loss recorded
    builder.evaluate(builder.distill("full", None, serves_any=True), 10, [99.0], final_train_loss=[1.2])
    text = leaderboard.write_reports(builder.store.root)
    assert ("⚠ UNDER-TRAINED: evaluations whose networks ended with a training loss above 0.5 on their own set "
            "(mean last-epoch loss), so their accuracy reflects the protocol's length as much as the set: "
            "vit under `smoke` 1 of 2.") in text
    assert text.count("UNDER-TRAINED") == 1


def test_distillations_that_may_start_from_different_generators_are_warned(builder):
    """A generator cache entry trained twice (or cited with two checksums) is named: rows comparing the
    methods that started from it may compare two generators."""
    builder.evaluate(builder.distill("random", 10), 10, [80.0])
    sources = {"d2m-gen": ("trained", None), "d2m": ("trained", None), "d2m-em": ("cache", "c" * 64)}
    for method, (source, digest) in sources.items():
        key = builder.distill(method, None, serves_any=True)
        builder.evaluate(key, 10, [60.0])
        record = builder.store.read_record("distill", key)
        record["result"]["artifact"] = {"pretrain": {"cache_file": "digits-1234.pt", "source": source,
                                                     "sha256": digest}}
        builder.store.write_record("distill", key, record)
    text = leaderboard.write_reports(builder.store.root)
    assert ("⚠ digits: the pre-trained generator cache entry digits-1234.pt was trained 2 times (1 distinct "
            "checksum(s) recorded); the 3 distillations of d2m, d2m-em, d2m-gen that start from it may start from "
            "different generators.") in text
    for method in sources:  # one training and one checksum: nothing to warn about
        key = builder.distill(method, None, serves_any=True)
        record = builder.store.read_record("distill", key)
        record["result"]["artifact"] = {"pretrain": {"cache_file": "digits-1234.pt", "source": "cache",
                                                     "sha256": "c" * 64}}
        builder.store.write_record("distill", key, record)
    assert "pre-trained generator cache entry" not in leaderboard.write_reports(builder.store.root)


def test_image_grid_has_one_row_per_class_denormalised(builder):
    pixels = grid_image(pixel_set(2).synthetic_set.x * 0.25, torch_labels(2), 10)
    tile, pad = 32, 2  # 8 px digits enlarged 4×
    assert pixels.shape == (10 * (tile + pad) + pad, 2 * (tile + pad) + pad)
    row_value = [pixels[pad + r * (tile + pad) + 5, pad + 5] for r in range(10)]
    assert row_value == [round(v * 0.25 * 255) for v in range(5)] + [255] * 5  # one class per row, clamped


def torch_labels(ipc: int):
    return pixel_set(ipc).synthetic_set.y


def test_report_draws_synthetic_sets_from_artifacts_and_page_links_them(builder):
    key = builder.distill("random", 3, artifact=pixel_set(3))
    builder.evaluate(key, 3, [40.0, 41.0])
    builder.evaluate(builder.distill("ghost", 3), 3, [10.0, 11.0])  # no artifact stored: listed, not fatal
    text = leaderboard.write_reports(builder.store.root)
    (grid,) = (builder.store.root / "images").glob("synthetic_digits_random_3_*.png")
    pixels = np.asarray(Image.open(grid))
    mean, std = 0.3054, 0.3761  # digits: class c was filled with the normalised value c
    assert pixels[7, 7] == round((0 * std + mean) * 255) and pixels[34 + 7, 7] == round((1 * std + mean) * 255)
    assert "- not drawn: ghost · digits ipc=3: artifact" in text
    html = (builder.store.root / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert sources and all((builder.store.root / s).is_file() for s in sources)
    assert any(s.startswith("images/synthetic_digits_random_3_") for s in sources)
    stale = builder.store.root / "images" / "synthetic_digits_removed_3_0123456789ab.png"
    stale.write_bytes(grid.read_bytes())  # a grid of a record since removed: the next report deletes it
    leaderboard.write_reports(builder.store.root)
    assert grid.is_file() and not stale.exists()


def test_html_page_holds_every_row_with_protocol_and_commit(builder):
    for method, acc in (("random", [50.0, 52.0]), ("herding", [60.0, 61.0])):
        builder.evaluate(builder.distill(method, 10), 10, acc)
    builder.evaluate(builder.distill("full", None, serves_any=True), None, [95.0, 96.0])
    report = build_report(builder.store.root, draw=False)
    html = page.render(report)
    table = html.split('id="results-table"')[1].split("</table>")[0]
    assert table.count("<tr class=\"facet\"") == 3
    assert '<td data-v="60.5">60.50 ± 0.50</td>' in table and "0123456789" in table
    assert 'title="the smoke protocol of the tests"' in table and "<dd>the smoke protocol of the tests</dd>" in html
    full_row = next(r for r in table.split("<tr")[1:] if '<td class="wrap">full</td>' in r)
    assert "data-ipc" not in full_row  # the whole-set row shows whatever IPC is filtered
    assert '<option value="10">10</option>' in html and "http" not in html.replace("http-equiv", "")
    rows = json.loads(leaderboard.rows_for_scripts(builder.store.root, "json"))
    herding = next(r for r in rows if r["method"] == "herding")
    assert herding["gain"] == pytest.approx(9.5) and herding["of_full"] == pytest.approx(60.5 / 95.5)


def test_records_of_other_layouts_are_left_out_not_fatal(builder):
    good = builder.distill("random", 10)
    builder.evaluate(good, 10, [50.0, 52.0])
    broken = [("distill", {"config": {"dataset": "digits"}}),  # no method, no key
              ("eval", {"config": {"dataset": "digits", "method": "random", "ipc": 10, "arch": "convnet",
                                   "protocol": None}, "result": {"accuracies": [1.0]}}),
              ("eval", {"config": {}, "result": {"accuracies": ["n/a"]}}),
              ("nas", {"config": {"candidate": {"width": 8, "kernel": 5}}, "result": {"accuracies": [1.0]}})]
    for i, (stage, record) in enumerate(broken):
        builder.store.write_record(stage, f"broken{i}", record)
    report = build_report(builder.store.root, draw=False)
    assert report.counts == {"distillations": 1, "evaluations": 1, "nas": 0, "failures": 0}
    assert report.summary["mean"].tolist() == [51.0]
