"""The replay check's plumbing: our draws are recorded, and a reference script receives exactly those draws."""

import subprocess
import sys

import numpy as np
import torch

from benchmark.data import load_dataset
from benchmark.data.registry import DataOptions
from benchmark.distiller import get_distiller
from benchmarks.faithfulness import PROJECT_ROOT
from benchmarks.replay import compare, record_ours

FAKE_UTILS = '''
import torch
def get_network(model, channel, num_classes, im_size):
    return torch.nn.Linear(4, num_classes)
'''
FAKE_SCRIPT = '''
import sys
import numpy as np
import torch
from utils import get_network
indices_class = [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
net = get_network("ConvNet", 1, 2, (2, 2))
image_syn = torch.randn(size=(2, 1, 2, 2), dtype=torch.float, requires_grad=True, device="cpu")
batches = [np.random.permutation(indices_class[c])[:2].tolist() for c in range(2)]
other = np.random.permutation(3)
save = sys.argv[sys.argv.index("--save_path") + 1]
torch.save({"data": [[image_syn.detach(), net.weight.detach(), batches, len(other), image_syn.requires_grad]]},
           save + "/res_fake.pt")
'''


def test_our_draws_are_recorded_in_the_order_the_reference_makes_them():
    data = load_dataset("digits", DataOptions())
    hp = get_distiller("dc").resolve_hparams(data.spec, 1, "paper", {"iterations": 2, "batch_real": 8})
    draws = record_ours(data, "dc", hp, 1, 0, torch.device("cpu"))
    assert len(draws["networks"]) == 2  # one fresh network per iteration
    assert [c for c, _ in draws["batches"]] == list(range(10)) * 2  # one real batch per class and outer step
    assert all(len(idx) == 8 and {int(data.train.labels[i]) for i in idx} == {c} for c, idx in draws["batches"])
    assert draws["start"].shape == draws["ours"].shape == (10, *data.spec.shape)
    assert not torch.equal(draws["start"], draws["ours"])


def test_the_reference_script_receives_the_recorded_network_batches_and_start(tmp_path):
    (tmp_path / "utils.py").write_text(FAKE_UTILS)
    (tmp_path / "main.py").write_text(FAKE_SCRIPT)
    weight = torch.arange(8.0).reshape(2, 4)
    start = torch.randn(2, 1, 2, 2)
    draws = {"networks": [{"weight": weight, "bias": torch.zeros(2)}], "batches": [(0, [6, 2]), (1, [9, 1])],
             "start": start}
    torch.save(draws, tmp_path / "draws.pt")
    done = subprocess.run([sys.executable, "-m", "benchmarks.replay", "replay-driver", str(tmp_path), "main.py",
                           str(tmp_path / "draws.pt"), "1", "--save_path", str(tmp_path)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    x, w, batches, others, requires_grad = torch.load(tmp_path / "res_fake.pt", weights_only=False)["data"][0]
    assert torch.equal(x, start) and requires_grad and torch.equal(w, weight)
    assert batches == [[6, 2], [9, 1]] and others == 3  # other permutations are the real numpy's


def test_a_recorded_batch_from_another_class_stops_the_replay(tmp_path):
    (tmp_path / "utils.py").write_text(FAKE_UTILS)
    (tmp_path / "main.py").write_text(FAKE_SCRIPT)
    torch.save({"networks": [{"weight": torch.zeros(2, 4), "bias": torch.zeros(2)}],
                "batches": [(0, [1, 3]), (1, [9, 1])], "start": torch.zeros(2, 1, 2, 2)}, tmp_path / "draws.pt")
    done = subprocess.run([sys.executable, "-m", "benchmarks.replay", "replay-driver", str(tmp_path), "main.py",
                           str(tmp_path / "draws.pt"), "1", "--save_path", str(tmp_path)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True)
    assert done.returncode != 0 and "indices outside the reference's class" in done.stderr


def test_compare_measures_the_difference_against_how_far_the_images_moved():
    start = torch.zeros(4)
    ours = torch.tensor([2.0, 0.0, 0.0, 0.0])
    r = compare(ours, ours + torch.tensor([0.0, 0.02, 0.0, 0.0]), start)
    assert np.isclose(r["moved"], 2.0) and np.isclose(r["relative"], 0.01) and np.isclose(r["max_abs"], 0.02)
