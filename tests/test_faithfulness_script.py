"""The faithfulness check's plumbing: reference copy and patches, MNIST in IDX, commands, per-iteration timing."""

import shutil

import numpy as np
import pytest
import torch

from benchmark.data import dataset_spec
from benchmark.data.native import read_mnist_family
from benchmark.distiller import get_distiller
from benchmarks.faithfulness import gaps_per_iteration, prepare_reference, reference_command

SIAMESE = "".join(f"    {v}[:] = {v}[0]\n" for v in ("theta", "theta", "randf", "randb", "rands", "randc",
                                                       "translation_x", "translation_y", "offset_x", "offset_y"))


def fake_checkout(tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "main.py").write_text("")
    (ref / "main_DM.py").write_text("")
    (ref / "networks.py").write_text("        out = out.view(out.size(0), -1)\n")
    (ref / "utils.py").write_text(SIAMESE)
    rng = np.random.default_rng(0)
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), y_train=np.arange(6) % 10,
             x_test=rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), y_test=np.array([7, 8, 9]))
    return ref, npz


def test_reference_copy_is_patched_and_reads_mnist_through_torchvision(tmp_path):
    ref, npz = fake_checkout(tmp_path)
    copy = prepare_reference(ref, npz)
    try:
        assert "out.reshape(out.size(0), -1)" in (copy / "networks.py").read_text()
        assert (copy / "utils.py").read_text().count("[0].clone()") == 10
        assert (ref / "utils.py").read_text() == SIAMESE  # the checkout itself is untouched
        x_train, y_train, x_test, y_test = read_mnist_family(copy / "data", "MNIST", download=False)
        with np.load(npz) as data:
            assert torch.equal(x_train[:, 0], torch.from_numpy(data["x_train"]))
            assert y_test.tolist() == [7, 8, 9] and y_train.tolist() == list(range(6))
    finally:
        shutil.rmtree(copy)


def test_a_checkout_the_patches_do_not_fit_is_refused(tmp_path):
    ref, npz = fake_checkout(tmp_path)
    (ref / "utils.py").write_text(SIAMESE[: SIAMESE.index("offset_y")])  # 9 siamese lines
    with pytest.raises(SystemExit, match="applied 9 times"):
        prepare_reference(ref, npz)


def test_reference_commands_carry_our_hyper_parameters():
    spec = dataset_spec("mnist")
    dm = get_distiller("dm").resolve_hparams(spec, 10, "paper", {"iterations": 50})
    script, argv = reference_command("dm", dm, 10, 50, 5, "out")
    assert script == "main_DM.py"
    flags = dict(zip(argv[::2], argv[1::2], strict=True))
    assert (flags["--Iteration"], flags["--num_exp"], flags["--init"], flags["--lr_img"]) == ("49", "5", "real", "1.0")
    assert flags["--dsa_strategy"] == "color_crop_cutout_scale_rotate"
    dc = get_distiller("dc").resolve_hparams(spec, 1, "paper")
    script, argv = reference_command("dc", dc, 1, 20, 5, "out")
    flags = dict(zip(argv[::2], argv[1::2], strict=True))
    assert script == "main.py" and flags["--method"] == "DC" and flags["--init"] == "noise"
    assert "--dsa_strategy" not in flags and flags["--lr_net"] == "0.01"


def test_seconds_per_iteration_are_gaps_between_iteration_ends_within_each_run():
    # 2 runs × 3 iterations × 2 image steps (DC's outer loop 2); an iteration ends with its second step
    stamps = [0, 1, 3, 4, 7, 8, 100, 101, 103, 104, 110, 111]
    assert gaps_per_iteration(stamps, 2, 3, 2) == [3, 4, 3, 7]
    with pytest.raises(SystemExit, match="expected 12 image-optimizer steps, recorded 11"):
        gaps_per_iteration(stamps[:-1], 2, 3, 2)
