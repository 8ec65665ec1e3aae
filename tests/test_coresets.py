import torch

from baselines import feature_net
from baselines.coresets import herding_order, kcenter_order
from benchmark.data import load_dataset
from benchmark.distiller import Budget, DistillTask, NeedsRedistillation, get_distiller


def test_herding_picks_points_whose_running_mean_tracks_the_mean():
    features = torch.tensor([[0.0, 0.0], [10.0, 0.0], [-10.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
    # mean = (0.2, 1.0): closest single point is (0, 0); then the point pulling the pair's mean closest
    order = herding_order(features, 3)
    assert order[0] == 0
    assert len(set(order)) == 3


def test_kcenter_spreads_out_from_the_start():
    features = torch.tensor([[0.0], [1.0], [10.0], [5.0], [9.0]])
    assert kcenter_order(features, 3, first=0) == [0, 2, 3]


def make_task(tmp_path, method: str, ipc: int, seed: int = 0) -> DistillTask:
    data = load_dataset("digits")
    distiller = get_distiller(method)
    return DistillTask(train=data.train, spec=data.spec, ipc=ipc, budget=Budget("cpu-small"),
                       device=torch.device("cpu"), seed=seed,
                       hparams=distiller.resolve_hparams(data.spec, ipc, "cpu-small"), work_dir=tmp_path / "w",
                       cache_dir=tmp_path / "cache")


def test_random_is_class_balanced_real_images_and_seeded(tmp_path):
    artifact = get_distiller("random").distill(make_task(tmp_path, "random", 3))
    s = artifact.synthesize(3, seed=0)
    assert s.y.tolist() == [c for c in range(10) for _ in range(3)]
    again = get_distiller("random").distill(make_task(tmp_path, "random", 3)).synthesize(3, 0)
    other = get_distiller("random").distill(make_task(tmp_path, "random", 3, seed=1)).synthesize(3, 0)
    assert torch.equal(s.x, again.x) and not torch.equal(s.x, other.x)
    train = load_dataset("digits").train
    all_x = train.images_at(torch.arange(len(train)))
    assert all((all_x - img).abs().flatten(1).sum(1).min() < 1e-5 for img in s.x)  # every image is a real one
    try:
        artifact.synthesize(10, 0)
    except NeedsRedistillation as e:
        assert "holds 3 image(s) per class" in str(e)
    else:
        raise AssertionError("an IPC-3 artifact must refuse IPC 10")


def test_herding_and_kcenter_share_one_cached_feature_net(tmp_path):
    h = get_distiller("herding").distill(make_task(tmp_path, "herding", 2)).synthesize(2, 0)
    cached = list((tmp_path / "cache" / "feature_nets").glob("*.pt"))
    assert len(cached) == 1
    k = get_distiller("kcenter").distill(make_task(tmp_path, "kcenter", 2)).synthesize(2, 0)
    assert list((tmp_path / "cache" / "feature_nets").glob("*.pt")) == cached
    assert h.x.shape == k.x.shape == (20, 1, 8, 8)
    assert h.y.tolist() == k.y.tolist()


def test_corrupt_feature_net_cache_is_recomputed(tmp_path):
    get_distiller("herding").distill(make_task(tmp_path, "herding", 1))
    (path,) = (tmp_path / "cache" / "feature_nets").glob("*.pt")
    good = torch.load(path, weights_only=True)
    path.write_bytes(path.read_bytes()[:100])  # truncated: fails its checksum
    feature_net._kept_embeddings.clear()  # a new process: nothing kept in memory
    get_distiller("herding").distill(make_task(tmp_path, "herding", 1))
    again = torch.load(path, weights_only=True)  # recomputed (deterministically) and saved intact
    assert all(torch.equal(good[k], again[k]) for k in good)


def test_cells_of_one_dataset_and_seed_embed_the_training_split_once(tmp_path, monkeypatch):
    def herding_and_kcenter():
        return [get_distiller(m).distill(make_task(tmp_path, m, ipc)).synthesize(ipc, 0).x
                for m, ipc in (("herding", 1), ("kcenter", 2), ("herding", 3))]

    embedded = []
    embed = feature_net.class_embeddings
    monkeypatch.setattr(feature_net, "class_embeddings", lambda net, train, c: embedded.append(c) or embed(net, train, c))
    kept = herding_and_kcenter()
    assert embedded == list(range(10))  # one pass over the ten classes served all three cells
    monkeypatch.setattr(feature_net, "EMBEDDINGS_KEPT_BYTES", 0)  # too large to keep: every cell re-embeds
    feature_net._kept_embeddings.clear()
    embedded.clear()
    assert all(torch.equal(a, b) for a, b in zip(kept, herding_and_kcenter(), strict=True))
    assert embedded == list(range(10)) * 3
