"""A third-party method, installed as a distribution with an entry point, appears without harness edits."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmark import distiller as distiller_module
from benchmark.distiller import DISTILLERS, ENTRY_POINT_GROUP, get_distiller, list_distillers
from benchmark.errors import BenchmarkError

PLUGIN = textwrap.dedent('''
    """A test plugin: the first image of every class, repeated."""
    import torch
    from benchmark.distiller import Distiller, PixelArtifact, SyntheticSet

    class FirstImages(Distiller):
        """Repeat the first real image of each class (a test plugin)."""

        def distill(self, task):
            x = torch.cat([task.train.all_images_of_class(c)[:1].repeat(task.ipc, 1, 1, 1)
                           for c in range(task.spec.num_classes)])
            y = torch.arange(task.spec.num_classes).repeat_interleave(task.ipc)
            return PixelArtifact(SyntheticSet(x.cpu(), y), task.ipc)
''')


def install_plugin(site: Path) -> None:
    """Lay the plugin out as pip would: a module plus a ``.dist-info`` with ``entry_points.txt``."""
    (site / "first_images_plugin.py").write_text(PLUGIN)
    info = site / "first_images_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: first-images-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nfirst-images = first_images_plugin:FirstImages\n")
    (info / "RECORD").write_text("")


def test_installed_plugin_is_listed_and_runs_through_the_grid(tmp_path, ci_grid):
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site)
    env = {"PYTHONPATH": f"{site}:{Path(__file__).resolve().parents[1]}", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "benchmark.list", "methods"], capture_output=True, text=True, env=env,
                         check=True)
    assert "first-images" in out.stdout and "Repeat the first real image" in out.stdout

    grid = ci_grid(methods=["first-images"], ipc=[2])
    run = subprocess.run([sys.executable, "-m", "benchmark.run", "--grid", str(grid), "--results",
                          str(tmp_path / "res"), "--no-progress", "--device", "cpu"], capture_output=True, text=True,
                         env=env)
    assert run.returncode == 0, run.stderr
    assert "first-images" in run.stdout
    assert len(list((tmp_path / "res" / "records" / "eval").glob("*.json"))) == 1


def test_unknown_method_lists_the_available_ones():
    with pytest.raises(BenchmarkError, match="unknown method 'rnadom' \\(did you mean random(, \\w+)*\\?\\); available: .*herding"):
        get_distiller("rnadom")


def test_broken_plugin_is_reported_and_skipped(tmp_path, monkeypatch, capsys):
    class BrokenEntryPoint:
        name, value = "broken", "nowhere:Nothing"

        def load(self):
            raise ImportError("no module named nowhere")

    monkeypatch.setattr(distiller_module, "entry_points", lambda group: [BrokenEntryPoint()])
    distiller_module._load_entry_points()
    assert "broken" not in list_distillers()
    assert "method plugin 'broken' (nowhere:Nothing) failed to load" in capsys.readouterr().err
    assert "random" in DISTILLERS.names()
