"""The D2M methods end to end on tiny budgets: registration, hyper-parameters, pre-training cache, resume,
divergence, user weights and a grid run through the harness."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

import d2m.distill as d2m_distill
from benchmark.data import dataset_spec, load_dataset
from benchmark.distiller import Budget, DistillTask, ablations, get_distiller, list_distillers
from benchmark.errors import BenchmarkError
from benchmark.iterate import DivergedError
from benchmark.run import main as run_main
from d2m.generator import GeneratorConfig, build_generator
from d2m.pretrain import save_generator

NAMES = ("d2m", "d2m-gen", "d2m-em", "d2m-pm", "d2m-scratch")
TINY = {"generator_width": 2, "pretrain_iterations": 3, "pretrain_batch": 8, "iterations": 3, "batch_real": 4,
        "checkpoint_every": 2, "feature_arch": "convnet_w32"}


def make_task(tmp_path: Path, method: str = "d2m", seed: int = 0, work: str = "work", **overrides) -> DistillTask:
    data = load_dataset("digits")
    hparams = get_distiller(method).resolve_hparams(data.spec, None, "cpu-small", {**TINY, **overrides})
    return DistillTask(train=data.train, spec=data.spec, ipc=None, budget=Budget("cpu-small"),
                       device=torch.device("cpu"), seed=seed, hparams=hparams, work_dir=tmp_path / work,
                       cache_dir=tmp_path / "cache")


def weights(artifact) -> list[torch.Tensor]:
    return [t.clone() for t in artifact.generator.state_dict().values()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_all_five_methods_are_registered_and_serve_any_ipc():
    assert set(NAMES) <= set(list_distillers())
    for name in NAMES:
        distiller = get_distiller(name)
        assert distiller.serves_any_ipc and distiller.name == name
    assert [get_distiller(n).losses for n in NAMES] == [("em", "pm"), (), ("em",), ("pm",), ("em", "pm")]
    assert [get_distiller(n).pretrained for n in NAMES] == [True, True, True, True, False]


def test_the_ablations_name_d2m_and_the_settings_they_do_not_read():
    """Reports compare each ablation with the d2m runs that agree with it on what it reads; every field of
    the hyper-parameters belongs to the distillation, the pre-training, or both (checkpoints, the width)."""
    assert {n: of for n, (of, _) in ablations().items() if n in NAMES} == {n: "d2m" for n in NAMES[1:]}
    fields = {f.name for f in dataclasses.fields(d2m_distill.D2MHparams)}
    shared = {"checkpoint_every", "generator_width"}
    assert fields - shared == d2m_distill.DISTILLATION_HPARAMS | d2m_distill.PRETRAINING_HPARAMS
    assert not d2m_distill.DISTILLATION_HPARAMS & d2m_distill.PRETRAINING_HPARAMS
    assert ablations()["d2m-gen"][1] == d2m_distill.DISTILLATION_HPARAMS
    assert ablations()["d2m-scratch"][1] == d2m_distill.PRETRAINING_HPARAMS


def test_presets_follow_the_documented_assumptions():
    spec = dataset_spec("cifar10")
    paper = get_distiller("d2m").resolve_hparams(spec, None, "paper")
    assert (paper.temperature, paper.task_balance, paper.batch_real, paper.feature_arch) == (4.0, 10.0, 128, "convnet")
    assert paper.generated_per_class == paper.batch_real and paper.generator_weights == ""
    small = get_distiller("d2m").resolve_hparams(dataset_spec("digits"), None, "cpu-small")
    assert small.iterations < paper.iterations and small.pretrain_iterations < paper.pretrain_iterations
    swept = get_distiller("d2m").resolve_hparams(dataset_spec("digits"), None, "cpu-small", {"batch_real": 7})
    assert swept.generated_per_class == 7  # a batch-size sweep moves both batches
    assert get_distiller("d2m").resolve_hparams(spec, None, "paper", {"batch_syn": 5}).generated_per_class == 5
    # 64 px and up have no cpu-small row of their own: they fall back to the CIFAR one, not to the paper budget
    tiny = get_distiller("d2m").resolve_hparams(dataset_spec("tiny_imagenet"), None, "cpu-small")
    assert tiny == get_distiller("d2m").resolve_hparams(spec, None, "cpu-small")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"temperature": -1.0}, "invalid temperature=-1.0: a positive number"),
    ({"temperature": 0}, "invalid temperature=0.0: a positive number"),
    ({"task_balance": -2.0}, "invalid task_balance=-2.0: a non-negative number"),
    ({"batch_real": 0}, "invalid batch_real=0: a positive integer"),
    ({"batch_syn": -1}, "invalid batch_syn=-1: a non-negative integer"),
    ({"iterations": -1}, "invalid iterations=-1: a non-negative integer"),
    ({"lr_generator": 0.0}, "invalid lr_generator=0.0: a positive number"),
    ({"generator_width": 0}, "invalid generator_width=0: a positive integer"),
    ({"feature_arch": "convnet9"}, "invalid feature_arch='convnet9': a registered architecture"),
    ({"dsa_strategy": "color_blur"}, "invalid dsa_strategy='color_blur'"),
    ({"temprature": 2.0}, "method d2m: unknown hyper-parameter ['temprature']"),
])
def test_bad_hyper_parameters_are_one_line_errors(overrides, message):
    with pytest.raises(BenchmarkError) as error:
        get_distiller("d2m").resolve_hparams(dataset_spec("digits"), None, "cpu-small", overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_check_rejects_unsupported_resolutions_and_ipc():
    d2m = get_distiller("d2m")
    d2m.check(dataset_spec("digits"), 50)
    spec = dataclasses.replace(dataset_spec("digits"), resolution=20)
    with pytest.raises(BenchmarkError, match="no generator size for resolution 20"):
        d2m.check(spec, 1)
    with pytest.raises(BenchmarkError, match="invalid ipc=0"):
        d2m.check(dataset_spec("digits"), 0)


def test_distillation_lowers_its_loss_records_costs_and_serves_every_ipc(tmp_path):
    task = make_task(tmp_path, iterations=8, checkpoint_every=100, generator_width=4, batch_real=8, lr_generator=3e-3)
    start = get_distiller("d2m-gen").distill(task).generator  # the same cached pre-trained generator d2m starts from

    def held_out_loss(net) -> float:  # the matching loss on three fixed draws no distillation step has seen
        streams = {name: torch.Generator().manual_seed(99 + i) for i, name in enumerate(d2m_distill.STREAMS)}
        with torch.no_grad():
            return sum(sum(d2m_distill.matching_terms(net, task, ("em", "pm"), streams).values()).item()
                       for _ in range(3))

    before = held_out_loss(start)
    artifact = get_distiller("d2m").distill(task)
    after = held_out_loss(artifact.generator)
    print(f"held-out matching loss {before:.4f} -> {after:.4f}")
    assert after < 0.8 * before
    summary = artifact.summary()
    assert summary["pretrain"]["source"] == "cache" and summary["pretrain"]["iterations"] == 3
    assert summary["pretrain"]["seconds"] > 0  # what the pre-training cost, although this run did not pay it
    assert summary["distill"]["iterations"] == 8 and [i for i, _ in summary["distill"]["loss_log"]] == [0, 7]
    assert set(summary["distill"]["last_terms"]) == {"em", "pm"} and summary["distill"]["seconds"] > 0
    for ipc in (1, 10, 50):
        assert len(artifact.synthesize(ipc, 0)) == 10 * ipc  # never NeedsRedistillation


def test_pretraining_is_cached_and_shared_across_seeds_and_methods(tmp_path, capsys):
    first = get_distiller("d2m-gen").distill(make_task(tmp_path, "d2m-gen", seed=0))
    second = get_distiller("d2m-gen").distill(make_task(tmp_path, "d2m-gen", seed=1))
    assert first.summary()["pretrain"]["source"] == "trained"
    assert second.summary()["pretrain"]["source"] == "cache"
    assert second.summary()["pretrain"]["seconds"] == first.summary()["pretrain"]["seconds"]  # cost kept
    assert second.summary()["pretrain"]["made_on"] == {"device": "cpu", "threads": torch.get_num_threads()}
    assert same(weights(first), weights(second))  # the pre-training seed is fixed, not the distillation seed
    assert "distill" not in first.summary()  # d2m-gen does not distil
    # a corrupt cache entry is detected by its checksum, said so, and recomputed to the same generator
    cache_file = next((tmp_path / "cache" / "d2m_generators").glob("*.pt"))
    recorded = Path(f"{cache_file}.sha256").read_text().strip()  # records name the entry they started from
    assert first.summary()["pretrain"]["sha256"] == second.summary()["pretrain"]["sha256"] == recorded
    cache_file.write_bytes(cache_file.read_bytes()[:-10] + b"corruption")
    third = get_distiller("d2m-em").distill(make_task(tmp_path, "d2m-em", iterations=0))
    assert "fails its checksum; recomputing it" in capsys.readouterr().err
    assert third.summary()["pretrain"]["source"] == "trained"
    assert same(weights(first), weights(third))


def test_task_balance_zero_is_the_embedding_only_ablation(tmp_path):
    """λ = 0 in a sweep and the ``d2m-em`` ablation train the same generator: the prediction term draws no
    randomness, so dropping it or weighting it by zero leaves every draw and every update alike."""
    em = get_distiller("d2m-em").distill(make_task(tmp_path, "d2m-em", work="em"))
    zero = get_distiller("d2m").distill(make_task(tmp_path, "d2m", task_balance=0.0, work="zero"))
    full = get_distiller("d2m").distill(make_task(tmp_path, "d2m", work="full"))
    assert same(weights(em), weights(zero)) and not same(weights(em), weights(full))


def test_scratch_starts_from_a_random_generator_per_seed(tmp_path):
    a = get_distiller("d2m-scratch").distill(make_task(tmp_path, "d2m-scratch", iterations=0, work="a"))
    b = get_distiller("d2m-scratch").distill(make_task(tmp_path, "d2m-scratch", seed=1, iterations=0, work="b"))
    assert a.summary()["pretrain"]["source"] == "random init"
    assert not (tmp_path / "cache" / "d2m_generators").exists()  # no pre-training was paid for
    assert not same(weights(a), weights(b))
    with pytest.raises(BenchmarkError, match="empty for d2m-scratch"):
        get_distiller("d2m-scratch").distill(make_task(tmp_path, "d2m-scratch", generator_weights="g.pt"))


def test_a_killed_distillation_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    whole = get_distiller("d2m").distill(make_task(tmp_path, iterations=5, work="whole"))
    calls = {"n": 0}
    original = d2m_distill.prediction_matching_loss

    def dies_at_the_fourth_iteration(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(d2m_distill, "prediction_matching_loss", dies_at_the_fourth_iteration)
    with pytest.raises(KeyboardInterrupt):
        get_distiller("d2m").distill(make_task(tmp_path, iterations=5, work="killed"))
    assert (tmp_path / "killed" / "checkpoint.pt").is_file()  # written after iteration 2
    monkeypatch.setattr(d2m_distill, "prediction_matching_loss", original)
    resumed = get_distiller("d2m").distill(make_task(tmp_path, iterations=5, work="killed"))
    assert resumed.summary()["distill"]["resumed_from"] == 2
    assert same(weights(whole), weights(resumed))


def test_nan_loss_stops_with_the_iteration_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    original = d2m_distill.embedding_matching_loss
    calls = {"n": 0}

    def nan_at_the_fourth_iteration(*args, **kwargs):
        calls["n"] += 1
        value = original(*args, **kwargs)
        return value * float("nan") if calls["n"] == 4 else value

    monkeypatch.setattr(d2m_distill, "embedding_matching_loss", nan_at_the_fourth_iteration)
    with pytest.raises(DivergedError, match="loss is nan at iteration 3; the last good checkpoint is"):
        get_distiller("d2m").distill(make_task(tmp_path, iterations=5))
    assert (tmp_path / "work" / "checkpoint.pt").is_file()


def test_user_generator_weights_load_or_fail_in_one_line(tmp_path):
    spec = dataset_spec("digits")
    mine = build_generator(GeneratorConfig.for_spec(spec, width=3), seed=42)
    save_generator(mine, tmp_path / "mine.pt")
    artifact = get_distiller("d2m-gen").distill(make_task(tmp_path, "d2m-gen", generator_weights=str(tmp_path / "mine.pt")))
    assert artifact.summary()["pretrain"]["source"] == "user weights"
    assert artifact.generator.config.width == 3  # the file's architecture wins over generator_width
    assert same(weights(artifact), list(mine.state_dict().values()))
    torch.save(mine.state_dict(), tmp_path / "bare.pt")  # a bare state dict needs the matching width
    bare = get_distiller("d2m-gen").distill(make_task(tmp_path, "d2m-gen", generator_weights=str(tmp_path / "bare.pt"),
                                                      generator_width=3))
    assert same(weights(bare), list(mine.state_dict().values()))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    cases = {str(tmp_path / "missing.pt"): "invalid generator_weights=", str(tmp_path / "junk.pt"): "not a readable",
             str(tmp_path / "bare.pt"): "does not fit the d2m generator of width 2"}
    for path, message in cases.items():
        with pytest.raises(BenchmarkError, match=message) as error:
            get_distiller("d2m-gen").distill(make_task(tmp_path, "d2m-gen", generator_weights=path))
        assert "\n" not in str(error.value)
    mnist = build_generator(GeneratorConfig.for_spec(dataset_spec("mnist"), width=2), seed=0)
    save_generator(mnist, tmp_path / "mnist.pt")
    with pytest.raises(BenchmarkError, match="is for 1x28x28 images of 10 classes, but digits has 1x8x8"):
        get_distiller("d2m-gen").distill(make_task(tmp_path, "d2m-gen", generator_weights=str(tmp_path / "mnist.pt")))


def test_a_grid_distils_once_per_seed_and_evaluates_every_ipc(tmp_path, ci_grid):
    hparams = "\n".join(f"{k} = {json.dumps(v)}" for k, v in TINY.items())
    grid = ci_grid(f"[hparams.d2m]\n{hparams}\n", methods=["d2m"], ipc=[1, 3])
    assert run_main(["--grid", str(grid), "--results", str(tmp_path / "r"), "--no-progress", "--no-report"]) == 0
    distills = [json.loads(p.read_text()) for p in (tmp_path / "r" / "records" / "distill").glob("*.json")]
    evals = [json.loads(p.read_text()) for p in (tmp_path / "r" / "records" / "eval").glob("*.json")]
    assert len(distills) == 1 and sorted(e["config"]["ipc"] for e in evals) == [1, 3]
    result = distills[0]["result"]
    assert result["serves_any_ipc"] and result["storage_bytes"] > 0
    assert result["artifact"]["pretrain"]["iterations"] == 3 and result["artifact"]["distill"]["iterations"] == 3
    assert all(e["result"]["train_images"] == 10 * e["config"]["ipc"] for e in evals)


def test_pretraining_curve_reads_the_generator_between_updates_without_changing_it(tmp_path, capsys,
                                                                                   load_experiment):
    """``experiments/d2m_gan_curve.py`` sizes the pre-training from samples read after updates: reading them
    (eval mode, the artifact's own sampling streams) must leave the GAN's training exactly as it was."""
    from d2m.pretrain import PretrainConfig, train_gan

    curve = load_experiment("d2m_gan_curve")
    data = load_dataset("digits")
    config = PretrainConfig(width=2, iterations=4, batch_size=8, lr_generator=2e-3, lr_discriminator=2e-3,
                            d_steps=1, seed=0, checkpoint_every=2)
    reader = curve.GanProbe.fit(data.train, 10, limit=200, seed=0)
    readings = []
    probed, _ = train_gan(data.train, data.spec, config, torch.device("cpu"), tmp_path / "a",
                          after_update=lambda it, net: readings.append((it, *curve.sample_reading(net, reader, 3))))
    plain, _ = train_gan(data.train, data.spec, config, torch.device("cpu"), tmp_path / "b")
    assert [r[0] for r in readings] == [0, 1, 2, 3] and all(0 <= a <= 1 and s > 0 for _, a, s in readings)
    assert all(torch.equal(a, b) for a, b in zip(probed.state_dict().values(), plain.state_dict().values(), strict=True))
    curve.main(["--iterations", "4", "--every", "2", "--per-class", "3", "--fit-limit", "200", "--width", "2"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split(" | ")[0] for row in rows] == ["| 2", "| 4"]


def test_artifact_probe_reads_every_stored_generator_of_the_asked_methods_and_seeds(tmp_path, capsys,
                                                                                 load_experiment):
    """``experiments/artifact_probe.py`` reads the sets stored generators draw: the same (agreement, spread) as
    probing ``synthesize(per_class, 0)`` by hand, for the methods and seeds asked; pixel sets are skipped."""
    from synthetic_records import StoreBuilder, pixel_set

    probe = load_experiment("artifact_probe")  # puts the project root on sys.path, as running the script does
    from experiments.gan_probe import GanProbe
    builder = StoreBuilder(tmp_path / "store")
    generators = {}
    for method, seed in (("d2m", 0), ("d2m-gen", 0), ("d2m", 1)):
        generators[method, seed] = get_distiller(method).distill(make_task(tmp_path, method, seed, f"{method}-{seed}"))
        builder.distill(method, None, seed=seed, serves_any=True, hparams=TINY, artifact=generators[method, seed])
    builder.distill("d2m-em", 1, artifact=pixel_set(1))  # asked for, but a pixel set: no generator to read
    probe.main(["--results", str(tmp_path / "store"), "--dataset", "digits", "--methods", "d2m,d2m-gen,d2m-em",
                "--per-class", "3", "--fit-limit", "200"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| d2m")]
    reader = GanProbe.fit(load_dataset("digits").train, 10, limit=200, seed=0)
    expected = []
    for method in ("d2m", "d2m-gen"):
        synthetic = generators[method, 0].synthesize(3, 0)
        expected.append([f"| {method}", "0", *(f"{v:.3f}" for v in reader.read(synthetic.x, synthetic.y))])
    assert [[row[0], row[1], row[-3], row[-2]] for row in rows] == expected
    assert probe.main(["--results", str(tmp_path / "store"), "--seeds", "zero"]) == 2
    assert "error: --seeds: expected comma-separated integers, got 'zero'" in capsys.readouterr().err
