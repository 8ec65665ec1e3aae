"""The stacked-ensemble evaluation path: the same optimisation as K separate networks, chosen per device."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

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
    losses = train_together(together, s, protocol, 4, "none", torch.Generator().manual_seed(0),
                            torch.Generator().manual_seed(1))
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
