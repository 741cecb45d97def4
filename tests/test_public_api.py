"""The public surface: light import, names that resolve, every CLI verb wired."""

import subprocess
import sys

import pytest

import pcseg
from pcseg.cli import VERBS, main


def test_import_is_light():
    # a fresh interpreter: importing pcseg must not pull open3d or initialise CUDA
    code = (
        "import sys, pcseg, pcseg.ops, pcseg.io, pcseg.metrics;"
        "import torch;"
        "assert 'open3d' not in sys.modules, 'open3d imported';"
        "assert not torch.cuda.is_initialized(), 'CUDA initialised'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", pcseg.__all__)
def test_public_names_resolve(name):
    assert getattr(pcseg, name) is not None


def test_public_api_keeps_its_names():
    # removing one of these is a breaking change: update the list on purpose, never silently
    expected = {
        "PointCloud", "read_points", "read_labels", "write_labels", "read_depth",
        "LabelMap", "ConfusionMatrix", "Segmenter", "PcsegError", "__version__",
    }
    assert expected <= set(pcseg.__all__)


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    assert f"pcseg {verb}" in capsys.readouterr().out


def test_top_level_help_lists_every_verb():
    out = subprocess.run(["pcseg", "--help"], capture_output=True, text=True, check=True).stdout
    for verb in VERBS:
        assert verb in out
