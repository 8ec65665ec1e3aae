"""DM's embedding forwards: the fast paths equal the plain forward, and the ``compile`` rule."""

import copy

import pytest
import torch
from torch._dynamo.utils import counters

from benchmark import blocking, fast_embedding
from benchmark.data import dataset_spec, load_dataset
from benchmark.distiller import Budget, DistillTask, get_distiller
from benchmark.errors import BenchmarkError
from benchmark.fast_embedding import AUTO_MIN_ITERATIONS, FastEmbedder, Im2colConv2d, compile_wanted
from benchmark.matching import random_feature_net
from benchmark.run import main as run_main

CPU = torch.device("cpu")


def fresh_nets(arch: str, count: int) -> list[torch.nn.Module]:
    spec, generator = dataset_spec("digits"), torch.Generator().manual_seed(0)
    return [random_feature_net(arch, spec, generator, CPU) for _ in range(count)]


def plain_embedding(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.embed(x)


def test_eager_channels_last_in_chunks_equals_the_plain_forward(monkeypatch):
    monkeypatch.setitem(blocking.CHUNK_PIXELS["cpu"], "forward", 7 * 8 * 8)  # 7 images per forward
    x = torch.rand(30, 1, 8, 8)
    (net,) = fresh_nets("convnet_d2", 1)
    embedder = FastEmbedder(compiled=False)
    assert torch.allclose(embedder(net, x), plain_embedding(net, x), atol=1e-5)
    assert embedder.describe() == "eager"


def test_batchnorm_networks_take_one_plain_forward_that_updates_their_statistics():
    (net,) = fresh_nets("convnet_bn", 1)
    x, before = torch.rand(12, 1, 8, 8), net.features[0][1].running_mean.clone()
    assert FastEmbedder(compiled=True)(net, x).shape == (12, 128)  # never compiled: no compiler needed
    assert not torch.equal(net.features[0][1].running_mean, before)


def test_compiled_forward_equals_the_plain_one_and_fresh_networks_reuse_one_compilation():
    torch._dynamo.reset()
    counters.clear()
    embedder, x = FastEmbedder(compiled=True), torch.rand(20, 1, 8, 8)
    for net in fresh_nets("convnet_d2", 3):
        assert torch.allclose(embedder(net, x), plain_embedding(net, x), atol=1e-5)
    assert counters["stats"]["unique_graphs"] == 1  # the second and third network recompiled nothing
    assert embedder.describe() == "compiled"


def test_the_compile_rule(monkeypatch):
    monkeypatch.setattr(fast_embedding, "cpp_compiler", lambda: "/usr/bin/g++")
    assert not compile_wanted("off", CPU, 10**6)
    assert not compile_wanted("auto", CPU, AUTO_MIN_ITERATIONS - 1)  # cpu-small: compiling would cost more
    assert compile_wanted("auto", CPU, AUTO_MIN_ITERATIONS)
    assert not compile_wanted("auto", torch.device("cuda"), 20000)  # not measured on CUDA
    assert compile_wanted("on", CPU, 1)
    monkeypatch.setattr(fast_embedding, "cpp_compiler", lambda: None)
    assert not compile_wanted("auto", CPU, 20000)
    with pytest.raises(BenchmarkError, match="compile=on needs a C\\+\\+ compiler"):
        compile_wanted("on", CPU, 20000)
    with pytest.raises(BenchmarkError, match="compile.*auto, on, off"):
        compile_wanted("yes", CPU, 20000)


def test_compile_on_without_a_compiler_is_refused_before_any_cell_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fast_embedding, "cpp_compiler", lambda: None)
    assert run_main(["--compile", "on", "--device", "cpu", "--results", str(tmp_path / "r"), "--dry-run"]) == 2
    assert "compile=on needs a C++ compiler" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_dm_learns_the_same_images_with_the_compiled_forward_and_records_which_ran(tmp_path):
    data = load_dataset("digits")
    hparams = get_distiller("dm").resolve_hparams(data.spec, 2, "cpu-small", {"arch": "convnet_d2", "batch_real": 16})
    artifacts = {}
    for choice in ("off", "on"):
        task = DistillTask(train=data.train, spec=data.spec, ipc=2, budget=Budget("cpu-small", 2), device=CPU, seed=0,
                           hparams=hparams, work_dir=tmp_path / choice, cache_dir=tmp_path / "c", compile=choice)
        artifacts[choice] = get_distiller("dm").distill(task)
    assert artifacts["off"].summary()["embedding_forward"] == "eager"
    assert artifacts["on"].summary()["embedding_forward"] == "compiled"
    assert torch.allclose(artifacts["on"].synthesize(2, 0).x, artifacts["off"].synthesize(2, 0).x, atol=1e-4)


@pytest.mark.parametrize(("stride", "padding", "bias"), [(1, 3, True), (2, 1, False), (1, 0, True)])
def test_the_im2col_convolution_equals_the_direct_one(stride, padding, bias):
    conv = torch.nn.Conv2d(1, 16, 3, stride=stride, padding=padding, bias=bias)
    x = torch.rand(5, 1, 9, 11)
    as_product = copy.deepcopy(conv)
    as_product.__class__ = Im2colConv2d
    with torch.no_grad():
        assert torch.allclose(as_product(x), conv(x), atol=1e-5)


def test_compiled_synthetic_forward_keeps_the_graph_to_the_images():
    (net,) = fresh_nets("convnet_d2", 1)
    target = torch.rand(10, 128 * 3 * 3)  # 8×8 digits padded to 12, pooled twice
    gradients = []
    for embed in (net.embed, lambda x: FastEmbedder(compiled=True)(net, x)):
        images = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(3)).requires_grad_()
        ((embed(images) - target) ** 2).sum().backward()
        gradients.append(images.grad)
    assert torch.allclose(gradients[1], gradients[0], atol=1e-4 * gradients[0].abs().max().item())


def test_compiled_forward_of_a_trainable_network_passes_gradients_to_its_weights():
    (net,) = fresh_nets("convnet_d1", 1)
    for p in net.parameters():
        p.requires_grad_(True)
    images, grads = torch.rand(6, 1, 8, 8), []
    for embed in (net.embed, lambda x: FastEmbedder(compiled=True)(net, x)):
        net.zero_grad()
        embed(images.requires_grad_()).square().sum().backward()
        grads.append(net.features[0][0].weight.grad.clone())
    assert torch.allclose(grads[1], grads[0], rtol=1e-4, atol=1e-4 * grads[0].abs().max().item())


def test_a_failing_compilation_is_one_line_naming_compile_off(monkeypatch):
    def broken(fn, **options):
        def call(*args):
            raise RuntimeError("inductor: C++ compile failed\nlong compiler output")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    (net,) = fresh_nets("convnet_d1", 1)
    with pytest.raises(BenchmarkError, match=r"^compile: .*\(inductor: C\+\+ compile failed\); rerun with compile=off$"):
        FastEmbedder(compiled=True)(net, torch.rand(4, 1, 8, 8))
