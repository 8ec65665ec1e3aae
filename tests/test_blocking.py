"""Cache-sized pieces: the evaluator's step and test pass, and DC's real gradients, give the whole batch's results."""

import torch
import torch.nn.functional as F

from benchmark import blocking
from benchmark.blocking import backward_in_pieces, gradients_in_pieces
from benchmark.data.spec import DatasetSpec
from benchmark.distiller import SyntheticSet
from benchmark.evaluate import top1_accuracy, train_network
from benchmark.fast_embedding import Im2colConv2d
from benchmark.matching import mixes_batch
from benchmark.models import build_model
from benchmark.protocol import CI

SPEC = DatasetSpec(name="t", channels=1, resolution=28, num_classes=10, mean=(0.0,), std=(1.0,), family="mnist", source="t")


def test_pieces_are_sized_in_pixels_on_a_cpu_and_bounded_for_memory_elsewhere():
    mnist, cifar = torch.zeros(256, 1, 28, 28), torch.zeros(256, 3, 32, 32)
    assert blocking.piece_size(mnist, "train") == 16 * 32 * 32 // (28 * 28) == 20
    assert blocking.piece_size(cifar, "train") == 16 and blocking.piece_size(cifar, "forward") == 32
    assert blocking.piece_size(torch.zeros(256, 3, 32, 32, device="meta"), "train") == 256
    assert blocking.piece_size(torch.zeros(3000, 3, 32, 32, device="meta"), "forward") == 2560  # a memory bound
    sizes = [len(x) for x, _ in blocking.pieces(cifar, torch.zeros(256), "forward")]
    assert sizes == [32] * 8


def test_a_step_in_pieces_has_the_whole_batch_gradient_and_loss():
    torch.manual_seed(0)
    x, y = torch.randn(50, 1, 28, 28), torch.randint(0, 10, (50,))
    results = []
    for split in (False, True):
        net = build_model("convnet", SPEC, seed=3)
        loss = backward_in_pieces(net, F.cross_entropy, x, y, split, bf16=False)
        results.append((loss, [p.grad.clone() for p in net.parameters()]))
    (whole, whole_grads), (split, split_grads) = results
    assert torch.allclose(whole, split, atol=1e-6)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(whole_grads, split_grads, strict=True))


def test_gradients_in_pieces_are_the_whole_batch_gradients_and_leave_grad_alone():
    torch.manual_seed(0)
    x, y = torch.randn(50, 1, 28, 28), torch.randint(0, 10, (50,))
    net = build_model("convnet", SPEC, seed=3)
    weights = [p for p in net.parameters() if p.ndim > 1]
    whole = gradients_in_pieces(net, F.cross_entropy, x, y, weights, split=False)
    split = gradients_in_pieces(net, F.cross_entropy, x, y, weights, split=True)  # pieces of 20, 20, 10
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(whole, split, strict=True))
    assert all(p.grad is None for p in net.parameters())


def test_only_batch_norm_in_train_mode_mixes_a_batch():
    bn, instance = build_model("convnet_bn", SPEC, seed=0), build_model("convnet", SPEC, seed=0)
    assert mixes_batch(bn.train()) and not mixes_batch(bn.eval())  # DC freezes batch norm while matching
    assert not mixes_batch(instance.train())


def test_only_networks_without_batch_norm_train_in_pieces(monkeypatch):
    works, original = [], blocking.pieces
    monkeypatch.setattr(blocking, "pieces", lambda *a: works.append(a[-1]) or original(*a))
    training_set = SyntheticSet(torch.randn(50, 1, 28, 28), torch.arange(10).repeat_interleave(5))
    for arch in ("convnet_bn", "convnet"):
        train_network(build_model(arch, SPEC, seed=3), training_set, CI, 1, "none", torch.Generator().manual_seed(0))
        assert works == ([] if arch == "convnet_bn" else ["train"])


def test_the_test_pass_in_pieces_counts_every_image_once():  # 100 images: pieces of 41, 41, 18
    class Labels(torch.nn.Module):  # "predicts" the label hidden in the first pixel
        def forward(self, x):
            return F.one_hot(x[:, 0, 0, 0].long(), 10).float()

    class Test:
        device = torch.device("cpu")

        def batches(self, size):
            labels = torch.arange(100) % 10
            x = torch.zeros(100, 1, 28, 28)
            x[:, 0, 0, 0] = torch.where(torch.arange(100) < 73, labels, (labels + 1) % 10).float()
            return zip(torch.split(x, size), torch.split(labels, size), strict=True)

    assert top1_accuracy(Labels(), Test(), 500) == 73.0


def test_the_cpu_test_pass_predicts_what_the_network_predicts():
    net = build_model("convnet", SPEC, seed=5)  # its 1-channel first layer runs as one matrix product there
    x = torch.randn(100, 1, 28, 28)
    with torch.no_grad():
        y = net.eval()(x).argmax(dim=1)

    class Test:
        device = torch.device("cpu")

        def batches(self, size):
            return zip(torch.split(x, size), torch.split(y, size), strict=True)

    assert top1_accuracy(net, Test(), 500) == 100.0
    assert {type(m) for m in net.modules()} & {Im2colConv2d} == set()  # the network itself is left as it was
