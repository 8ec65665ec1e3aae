"""The stacked-ensemble evaluation path: the same optimisation as K separate networks, chosen per device."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from benchmark import ensemble
from benchmark.augment import apply, draw, dsa_indexed, parse_strategy
from benchmark.cuda_graphs import graphs_on
from benchmark.data import load_dataset
from benchmark.distiller import RealTrainingSet, SyntheticSet
from benchmark.ensemble import per_network_loss, train_together, trains_together
from benchmark.errors import BenchmarkError
from benchmark.evaluate import evaluate, train_network
from benchmark.models import build_model
from benchmark.protocol import CI, get_protocol

CPU = torch.device("cpu")


def digits_subset(ipc: int) -> tuple[object, SyntheticSet]:
    data = load_dataset("digits")
    g = torch.Generator().manual_seed(0)
    x = torch.cat([data.train.images_of_class(c, ipc, g) for c in range(10)])
    return data, SyntheticSet(x, torch.arange(10).repeat_interleave(ipc))


def test_per_network_loss_is_each_networks_own_mean_cross_entropy():
    logits, y = torch.randn(3, 5, 4), torch.randint(0, 4, (3, 5))
    expected = torch.stack([F.cross_entropy(logits[i], y[i]) for i in range(3)])
    torch.testing.assert_close(per_network_loss(logits, y), expected)
    soft = F.one_hot(y, 4).float()
    torch.testing.assert_close(per_network_loss(logits, soft), expected)


@pytest.mark.parametrize("norm", ["instancenorm", "batchnorm"])
def test_training_together_equals_training_each_network_alone(norm, request):
    """Without augmentation and with one full batch per epoch the shuffle cannot matter, so the stacked
    ensemble must reach exactly the parameters (and batch-norm statistics) of K separate runs — through
    the lr decay and the momentum restart. In float64: in float32 the summation orders of a grouped and a
    plain convolution differ enough for instance norm to amplify them past a tight tolerance."""
    data, s = digits_subset(3)
    s = SyntheticSet(s.x.double(), s.y)
    torch.set_default_dtype(torch.float64)
    request.addfinalizer(lambda: torch.set_default_dtype(torch.float32))
    protocol = dataclasses.replace(CI, epochs=4, batch_size=256, lr_decay_fraction=0.5)
    alone = [build_model("convnet", data.spec, seed=k, norm=norm) for k in range(3)]
    together = [build_model("convnet", data.spec, seed=k, norm=norm) for k in range(3)]
    losses_alone = [train_network(net, s, protocol, 4, "none", torch.Generator().manual_seed(k))
                    for k, net in enumerate(alone)]
    losses, how = train_together(together, s, protocol, 4, "none", torch.Generator().manual_seed(0),
                                 torch.Generator().manual_seed(1))
    assert how == {"cuda_graphs": False}
    assert losses == pytest.approx(losses_alone, rel=1e-6)  # the loop sums its losses in float32
    for a, b in zip(alone, together, strict=True):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            torch.testing.assert_close(x, y, rtol=1e-7, atol=1e-9, msg=name)


def test_evaluate_together_learns_and_records_the_path():
    data, s = digits_subset(10)
    protocol = dataclasses.replace(get_protocol("smoke"), epochs=30)
    result = evaluate(s, data.test, data.spec, "convnet", protocol, [0, 1], CPU, seeds_together="on")
    assert result.extra["seeds_together"] is True and len(result.accuracies) == 2
    assert min(result.accuracies) > 70  # chance is 10 %
    assert result.accuracies[0] != result.accuracies[1]  # different initialisations, shuffles and magnitudes


def test_auto_trains_together_only_on_cuda_for_synthetic_sets_of_several_seeds():
    data, s = digits_subset(1)
    real = RealTrainingSet(data.train)
    assert not trains_together("auto", s, [0, 1], CPU)
    assert trains_together("auto", s, [0, 1], torch.device("cuda"))
    assert trains_together("on", s, [0, 1], CPU)
    assert not trains_together("on", s, [0], CPU)
    assert not trains_together("on", real, [0, 1], CPU)
    assert not trains_together("off", s, [0, 1], torch.device("cuda"))
    with pytest.raises(BenchmarkError, match="seeds_together.*auto, on, off"):
        trains_together("sometimes", s, [0, 1], CPU)


class EagerSteps:
    """Stands in for :class:`benchmark.cuda_graphs.GraphedSteps` off CUDA: runs every step as it comes."""

    made: list = []

    def __init__(self, step, optimizer, generator) -> None:
        self.step, self.captures, self.eager_steps, self.released = step, 0, 0, False
        EagerSteps.made.append(self)

    def __call__(self, shape) -> None:
        self.step(shape)
        self.eager_steps += 1

    def release(self) -> None:
        self.released = True


def test_the_graph_paths_static_batches_train_exactly_like_the_plain_path(monkeypatch):
    """What a CUDA graph replays — the step reading fixed input tensors the caller refills, the DSA family
    as a device index — must train as the plain step does: same parameters after the lr decay and the
    momentum restart, for a set of two batch lengths (10 images per network at batch 4: 4, 4, 2)."""
    monkeypatch.setattr(ensemble, "GraphedSteps", EagerSteps)
    data, s = digits_subset(1)
    protocol = dataclasses.replace(CI, epochs=4, batch_size=4, lr_decay_fraction=0.5)
    runs = {}
    for graphs in (False, True):
        nets = [build_model("convnet", data.spec, seed=k) for k in range(2)]
        losses, how = train_together(nets, s, protocol, 4, "none", torch.Generator().manual_seed(0),
                                     torch.Generator().manual_seed(1), cuda_graphs=graphs)
        runs[graphs] = (losses, how, nets)
    assert runs[True][1] == {"cuda_graphs": True, "graph_captures": 0, "eager_steps": 4 * 3}
    assert EagerSteps.made[-1].released  # graphs destroyed on the way out, not by a later garbage collection
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-6)
    for a, b in zip(runs[False][2], runs[True][2], strict=True):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            torch.testing.assert_close(x, y, msg=name)


def test_the_graph_path_augments_with_the_drawn_family_and_learns(monkeypatch):
    monkeypatch.setattr(ensemble, "GraphedSteps", EagerSteps)
    data, s = digits_subset(5)
    nets = [build_model("convnet", data.spec, seed=k) for k in range(2)]
    protocol = dataclasses.replace(get_protocol("smoke"), epochs=20)
    _, how = train_together(nets, s, protocol, 20, "crop_cutout_scale_rotate", torch.Generator().manual_seed(0),
                            torch.Generator().manual_seed(1), cuda_graphs=True)
    assert how["cuda_graphs"]
    for net in nets:
        net.eval()
        with torch.no_grad():
            correct = net(data.test.images_at(torch.arange(len(data.test)))).argmax(1) == data.test.labels
        assert correct.float().mean() > 0.6  # chance is 10 %; the plain path: 74 and 75 %


@pytest.mark.parametrize("index", [0, 1, 2])
def test_dsa_indexed_applies_the_family_at_the_index_with_its_own_draw(index):
    x = torch.rand(4, 1, 8, 8)
    strategy = "crop_flip_rotate"
    out = dsa_indexed(x, strategy, torch.tensor(index), torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # dsa_indexed draws every family's magnitudes, in strategy order
    draws = {f: draw(f, 4, 8, 8, g) for f in parse_strategy(strategy)}
    family = parse_strategy(strategy)[index]
    torch.testing.assert_close(out, apply(family, x, draws[family]))
    assert dsa_indexed(x, "none", torch.tensor(0), g) is x


def test_cuda_graphs_are_opt_in_on_cuda_and_refuse_other_devices_and_unknown_choices():
    assert graphs_on("on", torch.device("cuda")) and not graphs_on("off", torch.device("cuda"))
    assert not graphs_on("off", CPU)
    with pytest.raises(BenchmarkError, match="cuda_graphs=on needs a CUDA device"):
        graphs_on("on", CPU)
    with pytest.raises(BenchmarkError, match="cuda_graphs.*off, on"):
        graphs_on("auto", CPU)
