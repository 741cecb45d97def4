"""Thread-count choice (pcseg.threads) under a faked and a real competing load, and the
``--threads`` wiring of the CLI verbs that compute (train, eval, segment, demo)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

import pcseg.threads as threads
from pcseg.cli import main
from pcseg.errors import ConfigError, PcsegValueError
from test_engine_support import PointMLP, write_toy_kitti

SEEN: list[int] = []  # torch.get_num_threads() inside each ThreadProbe forward


class ThreadProbe(PointMLP):
    """PointMLP that records the torch thread count each forward runs with."""

    def forward_ragged(self, xyz, feats, offsets):
        SEEN.append(torch.get_num_threads())
        return super().forward_ragged(xyz, feats, offsets)


@pytest.fixture
def two_torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def two_cpus(monkeypatch):
    """A machine of 2 cores on which this process may use both; OpenMP threads spin."""
    monkeypatch.setattr(threads, "host_cpus", lambda: 2)
    monkeypatch.setattr(threads, "allowed_cpus", lambda: 2)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)


# ------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize("value", [None, "auto", "AUTO", " auto ", 0, "0"])
def test_automatic_settings(value):
    assert threads.parse_threads(value) is None


@pytest.mark.parametrize("value, count", [(1, 1), (3, 3), ("2", 2), (np.int64(4), 4)])
def test_counts(value, count):
    assert threads.parse_threads(value) == count


@pytest.mark.parametrize("value", [-1, 1.5, "x", "1.5", True, [2]])
def test_bad_settings_name_the_option(value):
    with pytest.raises(PcsegValueError, match="--threads"):
        threads.parse_threads(value, "--threads")


# ------------------------------------------------------------------------------ the choice
@pytest.mark.parametrize("busy, limit, expected", [
    (0, 2, 2),    # idle 2-core machine: both cores
    (0.4, 2, 2),  # a mostly idle machine: rounds to 0 busy
    (1, 2, 1),    # one competing process: the free core only
    (1.6, 2, 1),  # rounds to 2 busy: never fewer than one thread
    (7, 2, 1),    # far more work than cores
    (0, 1, 1),    # the user's torch.set_num_threads(1) is a ceiling
])
def test_auto_threads_counts_free_cores(two_cpus, busy, limit, expected):
    assert threads.auto_threads(limit=limit, busy=busy) == expected


@pytest.mark.parametrize("env, passive", [({}, False), ({"OMP_WAIT_POLICY": "passive"}, True),
                                          ({"OMP_WAIT_POLICY": "ACTIVE"}, False), ({"GOMP_SPINCOUNT": "0"}, True),
                                          ({"GOMP_SPINCOUNT": "10000"}, False)])
def test_passive_waiting_is_read_from_the_environment(env, passive):
    assert threads.omp_waits_passively(env) is passive


def test_passive_threads_use_every_allowed_core(two_cpus, monkeypatch):
    # sleeping OpenMP threads cost nothing: the load does not lower the count
    assert threads.auto_threads(limit=2, busy=5, passive=True) == 2
    assert threads.auto_threads(limit=1, busy=0, passive=True) == 1
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert threads.auto_threads(limit=2, busy=1) == 2
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert threads.auto_threads(limit=2, busy=1) == 1


def test_auto_threads_respects_affinity_on_a_big_host(monkeypatch):
    monkeypatch.setattr(threads, "host_cpus", lambda: 64)
    monkeypatch.setattr(threads, "allowed_cpus", lambda: 4)
    assert threads.auto_threads(limit=64, busy=30, passive=False) == 4
    assert threads.auto_threads(limit=64, busy=62, passive=False) == 2


def test_busy_cpus_reads_runnable_tasks_minus_our_own(monkeypatch, tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("0.50 0.40 0.30 3/180 4242\n")  # 3 runnable tasks on the machine
    monkeypatch.setattr(threads, "LOADAVG", loadavg)
    monkeypatch.setattr(threads, "_own_running_tasks", lambda: 1)  # ourselves, reading
    assert threads.busy_cpus(samples=3, interval=0) == 2.0
    # median over samples: one reading of a passing blip does not count
    readings = iter(["9/180", "2/180", "2/180"])
    monkeypatch.setattr(threads, "_runnable_tasks", lambda: int(next(readings).split("/")[0]))
    assert threads.busy_cpus(samples=3, interval=0) == 1.0


def test_busy_cpus_falls_back_to_the_load_average(monkeypatch, tmp_path):
    monkeypatch.setattr(threads, "LOADAVG", tmp_path / "absent")
    monkeypatch.setattr(os, "getloadavg", lambda: (1.25, 1.0, 0.5))
    assert threads.busy_cpus(samples=2, interval=0) == 1.25


def test_own_running_tasks_reads_this_process():
    # the calling thread is running while it reads
    assert threads._own_running_tasks() >= 1


def test_a_real_busy_process_is_counted():
    child = subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
    try:
        time.sleep(0.5)
        # the child is always running or waiting for a core (state R), whatever else runs here
        assert threads.busy_cpus(samples=5, interval=0.002) >= 1
    finally:
        child.kill()
        child.wait()


def test_thread_chooser_fixed_and_automatic(monkeypatch, two_torch_threads):
    assert threads.ThreadChooser(1).apply() == 1 and torch.get_num_threads() == 1
    busy = iter([1, 0])
    monkeypatch.setattr(threads, "auto_threads", lambda limit: max(1, limit - next(busy)))
    chooser = threads.ThreadChooser("auto", every=3600, limit=2)
    assert chooser.apply() == 1
    assert chooser.apply() == 1  # not due again yet: keeps its choice
    chooser.every, chooser._next = 0.0, 0.0
    assert chooser.apply() == 2 and torch.get_num_threads() == 2


def test_torch_threads_restores(two_torch_threads):
    with threads.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_passive_waiting_only_before_torch_loads():
    env = {}
    assert "torch" in sys.modules  # here torch is loaded: the variable is left alone
    assert threads.prefer_passive_waiting(env) is False and env == {}
    code = ("import os, sys; from pcseg.threads import prefer_passive_waiting as p; "
            "print(p(), os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "PASSIVE", "False"]
    out = subprocess.run([sys.executable, "-c", code], env={**clean, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "ACTIVE", "False"]  # the user's choice is kept


# ------------------------------------------------------------------------------ CLI wiring
def _toy(tmp_path):
    root = write_toy_kitti(tmp_path / "data", sequences=("00", "08"), scans=1, n=200)
    config = {
        "dataset": {"name": "semantickitti", "root": str(root), "train_split": [0], "val_split": [8],
                    "features": ["xyz", "intensity"]},
        "model": {"name": "test_threads:ThreadProbe", "hidden": 8},
        "train": {"epochs": 1, "batch_size": 1, "out_dir": str(tmp_path / "run"), "progress": False,
                  "tensorboard": False},
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(config))
    return root, path


@pytest.mark.parametrize("count", [1, 2])
def test_cli_threads_reach_every_forward(tmp_path, two_torch_threads, count):
    root, config = _toy(tmp_path)
    SEEN.clear()
    assert main(["train", str(config), "--threads", str(count)]) == 0
    assert SEEN and set(SEEN) == {count}  # training steps and the epoch's evaluation
    ckpt = tmp_path / "run" / "last.pt"
    torch.set_num_threads(2)
    for argv in (["eval", str(config), "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.json")],
                 ["segment", "--checkpoint", str(ckpt), str(root / "sequences" / "08" / "velodyne"),
                  "--out", str(tmp_path / "labels"), "--overwrite"]):
        SEEN.clear()
        assert main(argv + ["--threads", str(count)]) == 0
        assert SEEN and set(SEEN) == {count}, argv[0]
        assert torch.get_num_threads() == 2  # restored after the verb's work


def test_cli_auto_threads_follow_the_load(tmp_path, monkeypatch, two_torch_threads, two_cpus):
    root, config = _toy(tmp_path)
    assert main(["train", str(config), "--threads", "1"]) == 0
    ckpt = tmp_path / "run" / "last.pt"
    segment = ["segment", "--checkpoint", str(ckpt), str(root / "sequences" / "08" / "velodyne"),
               "--out", str(tmp_path / "labels"), "--overwrite"]
    for busy, expected in ((0.0, 2), (1.0, 1)):
        monkeypatch.setattr(threads, "busy_cpus", lambda busy=busy: busy)
        train = ["train", str(config), "--set", f"train.out_dir={tmp_path / f'run{busy}'}"]
        for argv in (segment, ["eval", str(config), "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.json")],
                     train):  # train.threads defaults to auto
            torch.set_num_threads(2)
            SEEN.clear()
            assert main(argv) == 0
            assert SEEN and set(SEEN) == {expected}, (argv[0], busy)


def test_cli_bad_threads_are_one_clear_error(tmp_path, capsys):
    root, config = _toy(tmp_path)
    assert main(["segment", "--checkpoint", str(tmp_path / "x.pt"), str(root), "--out", str(tmp_path / "o"),
                 "--threads", "many"]) == 2
    assert "pcseg segment: error: --threads must be a positive integer or 'auto', got 'many'" in capsys.readouterr().err
    assert main(["eval", str(config), "--checkpoint", str(tmp_path / "x.pt"), "--threads", "-2"]) == 2
    assert "pcseg eval: error: --threads" in capsys.readouterr().err
    assert main(["train", str(config), "--threads", "1.5"]) == 2
    assert "train.threads must be a positive integer" in capsys.readouterr().err
    assert main(["demo", "--threads", "x", "--no-render", "--no-view"]) == 2
    assert "pcseg demo: error: --threads" in capsys.readouterr().err


def test_demo_passes_threads_to_the_segmenter(tmp_path, monkeypatch):
    import pcseg.demo

    seen = {}

    def fake_run_demo(**kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(pcseg.demo, "run_demo", fake_run_demo)
    assert main(["demo", "--out", str(tmp_path), "--threads", "1", "--no-render", "--no-view"]) == 0
    assert seen["threads"] == 1
    assert main(["demo", "--out", str(tmp_path), "--no-render", "--no-view"]) == 0
    assert seen["threads"] is None


def test_config_threads_are_checked(tmp_path):
    from pcseg.engine.config import validate_config

    base = {"dataset": {"name": "synthetic"}, "model": {"name": "MinkUNet"}}
    assert validate_config({**base, "train": {"threads": 2}})["train"]["threads"] == 2
    assert validate_config(base)["train"]["threads"] == "auto"
    with pytest.raises(ConfigError, match="train.threads"):
        validate_config({**base, "train": {"threads": "two"}})
