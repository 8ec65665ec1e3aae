import dataclasses

import pytest
import torch
import torch.nn.functional as F

from benchmark.data import load_dataset
from benchmark.distiller import RealTrainingSet, SyntheticSet
from benchmark.errors import BenchmarkError
from benchmark.evaluate import effective_protocol, evaluate, soft_cross_entropy, top1_accuracy, train_network
from benchmark.models import build_model
from benchmark.protocol import CI, PAPER, get_protocol


def real_subset(ipc: int, seed: int = 0) -> SyntheticSet:
    data = load_dataset("digits")
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([data.train.images_of_class(c, ipc, g) for c in range(10)])
    return SyntheticSet(x, torch.arange(10).repeat_interleave(ipc))


def test_paper_protocol_is_the_reference_protocol():
    assert (PAPER.epochs, PAPER.lr, PAPER.momentum, PAPER.weight_decay, PAPER.batch_size) == (1000, 0.01, 0.9, 5e-4, 256)
    assert PAPER.decay_epoch(PAPER.epochs) == 500 and PAPER.lr_decay_factor == 0.1
    assert PAPER.dsa_strategy == "color_crop_cutout_flip_scale_rotate"


def test_evaluation_is_deterministic_per_seed_and_differs_across_seeds():
    data = load_dataset("digits")
    protocol = dataclasses.replace(CI, epochs=3)
    s = real_subset(2)
    a = evaluate(s, data.test, data.spec, "convnet", protocol, [0, 1], torch.device("cpu"))
    b = evaluate(s, data.test, data.spec, "convnet", protocol, [0, 1], torch.device("cpu"))
    assert a.accuracies == b.accuracies and len(a.accuracies) == 2
    assert a.accuracies[0] != a.accuracies[1]
    assert all(0 <= acc <= 100 for acc in a.accuracies)
    assert a.train_images == 20 and a.epochs == 3


def test_training_learns_a_real_subset_well_above_chance():
    data = load_dataset("digits")
    protocol = dataclasses.replace(get_protocol("smoke"), epochs=30)
    result = evaluate(real_subset(10), data.test, data.spec, "convnet", protocol, [0], torch.device("cpu"))
    assert result.accuracies[0] > 70  # chance is 10 %


def test_learning_rate_decays_once_and_momentum_restarts():
    data = load_dataset("digits")
    net = build_model("convnet", data.spec, seed=0)
    protocol = dataclasses.replace(CI, epochs=4, lr_decay_fraction=0.5)
    seen = []
    original_step = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        seen.append((self.param_groups[0]["lr"], len(self.state)))
        return original_step(self, *args, **kwargs)

    torch.optim.SGD.step = spy
    try:
        train_network(net, real_subset(1), protocol, 4, "none", torch.Generator().manual_seed(0))
    finally:
        torch.optim.SGD.step = original_step
    assert [lr for lr, _ in seen] == pytest.approx([0.01, 0.01, 0.001, 0.001])
    assert seen[2][1] == 0  # state (momentum buffers) cleared at the decay, as a rebuilt optimizer would be


def test_hints_override_the_protocol_and_whole_dataset_uses_full_epochs():
    s = real_subset(1)
    s.eval_hints = {"lr": 0.03}
    protocol, epochs = effective_protocol(CI, s)
    assert protocol.lr == 0.03 and epochs == CI.epochs
    whole = RealTrainingSet(load_dataset("digits").train)
    assert effective_protocol(CI, whole)[1] == CI.full_data_epochs
    # 1437 digits = 6 batches an epoch: the paper protocol's 2000-step floor gives 334 epochs, not 30
    assert effective_protocol(PAPER, whole)[1] == 334 and PAPER.whole_dataset_epochs(60000) == 30
    s.eval_hints = {"learning_rate": 1.0}
    with pytest.raises(BenchmarkError, match="unknown protocol override \\['learning_rate'\\]"):
        effective_protocol(CI, s)


def test_a_protocol_can_train_at_its_own_lr_instead_of_the_sets():
    """MTT's sets carry their learned step size; ``use_set_lr = false`` trains them at the protocol's lr (to
    separate the images from the step size), keeps the other hints, and is recorded only when off."""
    s = real_subset(1)
    s.eval_hints = {"lr": 0.03, "epochs": 7}
    own = CI.overridden({"use_set_lr": False})
    assert effective_protocol(own, s)[0].lr == CI.lr and effective_protocol(own, s)[1] == 7
    assert effective_protocol(CI, s)[0].lr == 0.03
    assert "use_set_lr" not in CI.as_record() and own.as_record()["use_set_lr"] is False
    with pytest.raises(BenchmarkError, match="invalid protocol.use_set_lr='no': true or false"):
        CI.overridden({"use_set_lr": "no"})
    with pytest.raises(BenchmarkError, match="invalid protocol.epochs=2.5: an integer"):
        CI.overridden({"epochs": 2.5})
    assert CI.overridden({"lr": 1}).lr == 1  # an integer is a number


def test_precision_is_validated_recorded_only_when_not_fp32_and_trains_in_bf16():
    assert "precision" not in PAPER.as_record()  # keys of fp32 cells stay what they were before the field
    bf16 = PAPER.overridden({"precision": "bf16", "epochs": 2, "models": 1})
    assert bf16.as_record()["precision"] == "bf16"
    with pytest.raises(BenchmarkError, match="invalid protocol.precision='fp16': one of fp32, bf16"):
        PAPER.overridden({"precision": "fp16"})
    data = load_dataset("digits")
    result = evaluate(real_subset(1), data.test, data.spec, "convnet", bf16, [0], torch.device("cpu"))
    assert 0 <= result.accuracies[0] <= 100 and result.protocol["precision"] == "bf16"


def test_soft_cross_entropy_equals_cross_entropy_for_one_hot_targets():
    logits = torch.randn(5, 4)
    labels = torch.tensor([0, 3, 1, 1, 2])
    assert torch.allclose(soft_cross_entropy(logits, F.one_hot(labels, 4).float()), F.cross_entropy(logits, labels))


def test_soft_labels_train_and_bad_sets_are_rejected():
    data = load_dataset("digits")
    s = real_subset(1)
    soft = SyntheticSet(s.x, F.one_hot(s.y, 10).float() * 0.9 + 0.01)
    result = evaluate(soft, data.test, data.spec, "convnet", CI, [0], torch.device("cpu"))
    assert 0 <= result.accuracies[0] <= 100
    with pytest.raises(BenchmarkError, match="NaN or infinite"):
        evaluate(SyntheticSet(s.x * float("nan"), s.y), data.test, data.spec, "convnet", CI, [0], torch.device("cpu"))
    with pytest.raises(BenchmarkError, match="labels must lie in"):
        evaluate(SyntheticSet(s.x, s.y + 10), data.test, data.spec, "convnet", CI, [0], torch.device("cpu"))


def test_accuracy_counts_the_whole_test_split():
    data = load_dataset("digits")

    class Oracle(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), 10)  # always class 0

    acc = top1_accuracy(Oracle(), data.test, batch_size=7)
    assert acc == pytest.approx(100 * int((data.test.labels == 0).sum()) / len(data.test))
