"""Every command and the Python example in the README run, in a scratch folder.

The set-up commands (installs) are checked by tests/test_readme.py and run by CI itself. Training
commands run as written with size-down overrides appended (one epoch on one or two scans), so the
suite stays fast; everything else runs exactly as printed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO

# appended to README training commands: same config, same code path, a few seconds of work
SMALL_RUN = [
    "--set", "train.epochs=1", "--set", "train.eval_every=1", "--set", "train.batch_size=1",
    "--set", "model.layers=[1,1,1,1,1,1,1,1]", "--set", "model.width=0.25",
    "--set", "model.voxel_size=0.5", "--set", "dataset.voxel_size=0.5",
]
SMALL_DATA = {
    "configs/synthetic_minkunet.yaml": ["--set", "dataset.train_split=1", "--set", "dataset.val_split=1"],
    "configs/semantickitti_minkunet.yaml": [
        "--set", "dataset.train_split=[0]", "--set", "dataset.val_split=[8]", "--set", "dataset.num_workers=0",
        "--set", "dataset.augment.scan_mix=0",
    ],
}


def _readme():
    return (REPO / "README.md").read_text()


def _commands():
    after_setup = _readme().split("## Ten lines of Python", 1)[1]
    lines = []
    for block in re.findall(r"```bash\n(.+?)```", after_setup, flags=re.S):
        lines += [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]
    return lines


def _python_example():
    return re.search(r"## Ten lines of Python\n\n```python\n(.+?)```", _readme(), flags=re.S).group(1)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch folder that sees the repository's configs and package data, like its root."""
    work = tmp_path_factory.mktemp("readme")
    for name in ("pcseg", "configs", "datasets"):
        (work / name).symlink_to(REPO / name)
    # the SemanticKITTI commands need a dataset at data/semantickitti: a synthetic one in its layout
    subprocess.run(
        ["pcseg", "synth", "--out", str(work / "data" / "semantickitti"), "--sequences", "00", "08",
         "--scans", "2", "--seed", "3", "--no-progress"],
        check=True, capture_output=True,
    )
    return work


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    if "train" in argv:
        config = next(a for a in argv if a.endswith(".yaml"))
        argv += SMALL_RUN + SMALL_DATA[config]
    if argv[0] == "torchrun":
        # this machine has no GPU: two CPU processes (gloo), as in the README on a CPU box
        argv = [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
    return argv


def test_readme_lists_commands():
    verbs = {shlex.split(c)[1] for c in _commands() if c.startswith("pcseg ")}
    assert {"synth", "info", "segment", "score", "view", "train", "eval"} <= verbs


@pytest.mark.slow
def test_readme_commands_run(workdir):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    for command in _commands():
        result = subprocess.run(_argv(command), cwd=workdir, capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, f"README command failed: {command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    # what the commands promise to leave behind
    assert (workdir / "predictions" / "000000.label").is_file()
    assert (workdir / "score" / "metrics.json").is_file()
    assert (workdir / "view.png").stat().st_size > 10_000
    assert "scatter3d" in (workdir / "view.html").read_text()
    assert (workdir / "runs" / "synthetic_minkunet" / "best.pt").is_file()


def test_readme_python_example_runs(workdir):
    code = _python_example()
    result = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mIoU" in result.stdout
    assert (workdir / "sample.png").stat().st_size > 10_000
