"""Shared method pieces: matching distances on hand-checkable tensors, hooks, the resumable loop."""

import pytest
import torch
from torch import nn

from benchmark.data import dataset_spec, load_dataset
from benchmark.iterate import DivergedError, run_iterations
from benchmark.matching import (
    ActivationRecorder,
    channel_attention,
    class_mean_distance,
    gradient_distance,
    random_feature_net,
    spatial_attention,
)
from benchmark.synthetic import class_labels, init_synthetic_images


def test_class_mean_distance_by_hand():
    real = torch.tensor([[0.0, 0.0], [2.0, 2.0], [1.0, 1.0]])  # class 0: two rows (mean 1,1); class 1: one row
    syn = torch.tensor([[1.0, 0.0], [1.0, 3.0]])
    # (1-1)^2 + (1-0)^2 + (1-1)^2 + (1-3)^2 = 5
    assert class_mean_distance(real, [2, 1], syn, [1, 1]).item() == pytest.approx(5.0)


def test_attention_maps_are_normalised_and_match_the_reference_definition():
    a = torch.tensor([[[[1.0, -2.0]], [[3.0, 0.0]]]])  # (B=1, C=2, H=1, W=2)
    s = spatial_attention(a)  # sums over channels of |a|: [4, 2] / sqrt(20)
    assert torch.allclose(s, torch.tensor([[4.0, 2.0]]) / 20**0.5)
    c = channel_attention(a)  # spatial means of |a|: [1.5, 1.5] -> [0.7071, 0.7071]
    assert torch.allclose(c, torch.tensor([[0.5**0.5, 0.5**0.5]]))


def test_gradient_distance_is_dc_distance_wb():
    g = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert gradient_distance([g], [g]).item() == pytest.approx(0.0, abs=1e-5)
    assert gradient_distance([g], [-g]).item() == pytest.approx(4.0, abs=1e-4)  # two rows, 1 - (-1) each
    assert gradient_distance([torch.ones(3)], [torch.zeros(3)]).item() == 0.0  # biases are ignored


def test_recorder_collects_relu_outputs_in_order():
    spec = dataset_spec("digits")
    net = random_feature_net("convnet", spec, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert not any(p.requires_grad for p in net.parameters())
    with ActivationRecorder(net) as rec:
        net(torch.randn(2, *spec.shape))
        outs = rec.take()
    assert [o.shape[-1] for o in outs] == [12, 6, 3]  # ReLU outputs before pooling (8 px input, first pad 3)


def test_synthetic_init_real_and_noise():
    data = load_dataset("digits")
    g = torch.Generator().manual_seed(0)
    x = init_synthetic_images(data.train, data.spec, 2, "real", g, torch.device("cpu"))
    assert x.shape == (20, 1, 8, 8) and x.requires_grad and x.is_leaf
    assert class_labels(3, 2).tolist() == [0, 0, 1, 1, 2, 2]
    n = init_synthetic_images(data.train, data.spec, 1, "noise", g, torch.device("cpu"))
    assert abs(float(n.detach().mean())) < 0.5


def test_loop_resumes_from_its_checkpoint_with_identical_results(tmp_path):
    def make():
        w = torch.zeros(3, requires_grad=True)
        opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
        g = torch.Generator().manual_seed(0)

        def step(it):
            target = torch.randn(3, generator=g)
            loss = ((w - target) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        return w, opt, g, step

    w, opt, g, step = make()
    full = run_iterations(10, step, {"w": w, "opt": opt, "g": g}, tmp_path / "a", checkpoint_every=4)
    w2, opt2, g2, step2 = make()

    def killed(it):
        if it == 6:
            raise KeyboardInterrupt
        return step2(it)

    (tmp_path / "b").mkdir()
    with pytest.raises(KeyboardInterrupt):
        run_iterations(10, killed, {"w": w2, "opt": opt2, "g": g2}, tmp_path / "b", checkpoint_every=4)
    w3, opt3, g3, step3 = make()  # a fresh process: state comes from the checkpoint at iteration 4
    resumed = run_iterations(10, step3, {"w": w3, "opt": opt3, "g": g3}, tmp_path / "b", checkpoint_every=4)
    assert resumed.resumed_from == 4 and resumed.iterations == 10
    assert torch.allclose(w, w3) and full.last_loss == pytest.approx(resumed.last_loss)


def test_nan_loss_stops_with_the_iteration(tmp_path):
    (tmp_path / "w").mkdir()
    with pytest.raises(DivergedError, match="loss is nan at iteration 3"):
        run_iterations(5, lambda it: float("nan") if it == 3 else 1.0, {}, tmp_path / "w")


def test_recorder_removes_its_hooks():
    net = nn.Sequential(nn.ReLU())
    with ActivationRecorder(net):
        pass
    assert not net[0]._forward_hooks
