"""Interrupted training loses nothing: SIGINT/SIGTERM save the exact step reached and resume
continues bit-exactly; a second signal exits at once keeping the previous checkpoint; SIGKILL
during checkpoint writes never tears the checkpoint."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from pcseg.engine.checkpoint import load_checkpoint
from pcseg.engine.interrupt import GracefulStop, TrainingInterrupted
from pcseg.engine.trainer import Trainer
from test_engine_support import PointMLP, toy_config, write_toy_kitti

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


class SelfInterruptingMLP(PointMLP):
    """PointMLP that signals its own process during training forward number N, as a user's
    Ctrl-C would: ``PCSEG_TEST_INTERRUPT=N:SIGNAL[:TIMES]`` (read when the model is built)."""

    def __init__(self, num_classes, in_channels, hidden=16):
        super().__init__(num_classes, in_channels, hidden)
        spec = os.environ.get("PCSEG_TEST_INTERRUPT", "")
        parts = spec.split(":") if spec else []
        self.at = int(parts[0]) if parts else -1
        self.signum = getattr(signal, f"SIG{parts[1]}") if parts else None
        self.times = int(parts[2]) if len(parts) > 2 else 1
        self.calls = 0

    def forward_ragged(self, xyz, feats, offsets):
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                for _ in range(self.times):
                    os.kill(os.getpid(), self.signum)
        return super().forward_ragged(xyz, feats, offsets)


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    return write_toy_kitti(tmp_path_factory.mktemp("toy"), sequences=("00", "08"), scans=4, n=400)


def _config(root, out):
    config = toy_config(root, out, epochs=3, batch_size=2, lr=0.01)
    config["model"] = {"name": "test_engine_interrupt:SelfInterruptingMLP", "hidden": 16}
    config["dataset"]["augment"].update(rotate_z=True, jitter=0.01, dropout=0.1)
    config["dataset"]["num_points"] = 300
    return config


@pytest.mark.parametrize("at, name, step_in_epoch", [(3, "SIGINT", 1), (2, "SIGTERM", 0)])
def test_signal_saves_the_exact_step_and_resume_is_bit_exact(toy_root, tmp_path, monkeypatch, at, name,
                                                             step_in_epoch):
    """2 steps per epoch: step 3 is mid-epoch; step 2 ends epoch 1 (its evaluation and save run first)."""
    quiet = dict(log=lambda *a: None)
    full = Trainer(_config(toy_root, tmp_path / "full"), **quiet)
    full.fit()
    monkeypatch.setenv("PCSEG_TEST_INTERRUPT", f"{at}:{name[3:]}")
    cut = Trainer(_config(toy_root, tmp_path / "cut"), **quiet)
    with GracefulStop() as stop, pytest.raises(TrainingInterrupted) as info:
        cut.fit(stop=stop)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    assert info.value.signum == getattr(signal, name) and info.value.step == at
    saved = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert (saved["step"], saved["step_in_epoch"]) == (at, step_in_epoch)
    monkeypatch.delenv("PCSEG_TEST_INTERRUPT")
    resumed = Trainer(_config(toy_root, tmp_path / "cut"), **quiet)
    resumed.fit(resume=True)
    assert resumed.step == full.step == 6
    for (key, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), key
    for a, b in zip(full.optimizer.state_dict()["state"].values(), resumed.optimizer.state_dict()["state"].values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])


def _cli(tmp_path, root, *extra, interrupt=None, timeout=300):
    config = _config(root, tmp_path / "run")
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({"dataset": config["dataset"], "model": config["model"], "train": config["train"]}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]))
    env.pop("PCSEG_TEST_INTERRUPT", None)
    if interrupt:
        env["PCSEG_TEST_INTERRUPT"] = interrupt
    return subprocess.run([sys.executable, "-m", "pcseg", "train", str(path), *extra], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=timeout), path


def test_cli_ctrl_c_says_where_and_how_to_resume(toy_root, tmp_path):
    done, path = _cli(tmp_path, toy_root, "--set", "train.threads=1", interrupt="3:INT")
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    ckpt = tmp_path / "run" / "last.pt"
    assert last == (f"pcseg train: interrupted by SIGINT at step 3 (epoch 2); saved {ckpt}; "
                    f"`pcseg train {path} --set train.threads=1 --resume` continues bit-exactly from there")
    assert load_checkpoint(ckpt)["step"] == 3
    done, _ = _cli(tmp_path, toy_root, "--set", "train.threads=1", "--resume")
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(ckpt)["step"] == 6


def test_second_signal_exits_at_once_keeping_the_previous_checkpoint(toy_root, tmp_path):
    done, _ = _cli(tmp_path, toy_root, interrupt="3:INT:2")
    assert done.returncode == 130
    assert "second SIGINT: exiting now" in done.stderr and "Traceback" not in done.stderr
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 2  # epoch 1's, untouched


def test_sigterm_before_training_saves_nothing(toy_root, tmp_path):
    """A signal while the datasets are being built: one line, no run folder content."""
    with GracefulStop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signum == signal.SIGTERM
    assert "before training started" in str(TrainingInterrupted(signal.SIGTERM))


_WRITER = r"""
import sys, torch
from pcseg.engine.checkpoint import save_checkpoint
path, i = sys.argv[1], int(sys.argv[2])
while True:
    save_checkpoint(path, {"config": {}, "label_map": {}, "model": {"w": torch.full((2_000_000,), float(i))}, "i": i})
    print(i, flush=True)
    i += 1
"""


def test_sigkill_during_checkpoint_writes_keeps_a_whole_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    rng = random.Random(0)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    written = -1
    for round_ in range(5):
        child = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(written + 1)], stdout=subprocess.PIPE,
                                 text=True, env=env)
        first = child.stdout.readline()  # one whole write done; the kill lands in a later one
        assert first.strip(), "writer failed to start"
        time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        rest = child.communicate()[0].split()
        child.wait()
        written = int(rest[-1]) if rest else int(first)
        payload = load_checkpoint(path)
        assert payload["i"] >= written  # the newest completed write (or one finished just before the kill)
        assert torch.equal(payload["model"]["w"], torch.full((2_000_000,), float(payload["i"]))), round_
        written = payload["i"]
