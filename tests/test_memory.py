"""pcseg.memory.keep_freed_memory: glibc reuses freed memory without page faults, nothing happens
without glibc or when switched off, and training gives the same bits either way.

The malloc settings are process-wide and cannot be undone, so the runs that apply them (or need
glibc's defaults) are subprocesses."""

import os
import subprocess
import sys

import pytest

import pcseg.memory as memory
from conftest import REPO
from pcseg.engine.config import validate_config
from pcseg.errors import ConfigError

glibc_only = pytest.mark.skipif(memory.glibc() is None, reason="needs glibc")

# 64 MiB: above glibc's largest dynamic mmap threshold (32 MiB), so by default every malloc of it
# is a fresh mapping whose pages fault on first touch
FAULTS = """
import ctypes, resource, sys
from pcseg.memory import glibc, keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory(environ={})
libc = glibc()
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def touch():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(64 << 20)
    ctypes.memset(block, 1, 64 << 20)
    libc.free(block)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print([touch() for _ in range(3)][-1])
"""

# a few MinkUNet training steps on toy scans; with "keep", 256 MiB of NaN are freed first, so
# every later block comes from poisoned heap memory instead of fresh zeroed pages
TRAIN = """
import hashlib, sys, torch
sys.path.insert(0, sys.argv[3])
from pcseg.engine.trainer import Trainer
from test_engine_support import toy_config
config = toy_config(sys.argv[2], sys.argv[2] + "/run_" + sys.argv[1], epochs=2, max_steps=3, batch_size=2,
                    keep_memory=sys.argv[1] == "keep")
config["model"] = {"name": "MinkUNet", "voxel_size": 0.5, "width": 0.25}
trainer = Trainer(config, log=lambda *a: None)
assert trainer.keeps_memory == (sys.argv[1] == "keep")
if trainer.keeps_memory:
    poison = torch.full((64 << 20,), float("nan"))
    del poison
trainer.fit()
digest = hashlib.sha256()
for tensor in trainer.model.state_dict().values():
    digest.update(tensor.detach().contiguous().numpy().tobytes())
print(digest.hexdigest())
"""


def _run(script, *args):
    env = {k: v for k, v in os.environ.items() if not memory.user_malloc_settings({k: v})}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@glibc_only
def test_freed_block_is_reused_without_page_faults():
    pages = (64 << 20) // os.sysconf("SC_PAGE_SIZE")
    default = int(_run(FAULTS, "default"))
    if default < pages // 2:
        pytest.skip(f"glibc's default already reuses the block here ({default} faults): nothing to compare")
    assert int(_run(FAULTS, "keep")) < pages // 16


@glibc_only
def test_training_is_bit_identical_with_and_without(tmp_path):
    from test_engine_support import write_toy_kitti

    root = write_toy_kitti(tmp_path / "toy", sequences=("00", "08"), scans=4, n=600)
    tests = REPO / "tests"
    assert _run(TRAIN, "keep", root, tests) == _run(TRAIN, "default", root, tests)


class FakeLibc:
    """Records mallopt calls; refuses the parameters in ``refuse`` like an older glibc."""

    def __init__(self, refuse=()):
        self.calls, self.refuse = [], set(refuse)

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 0 if param in self.refuse else 1


def test_settings_applied_through_mallopt(monkeypatch):
    fake = FakeLibc()
    monkeypatch.setattr(memory, "glibc", lambda: fake)
    assert memory.keep_freed_memory(environ={})
    assert fake.calls == [(memory.M_TRIM_THRESHOLD, -1), (memory.M_MMAP_THRESHOLD, memory.MMAP_THRESHOLD)]
    # glibc before 2.35 refuses a threshold above 32 MiB: no separate mappings at all instead
    old = FakeLibc(refuse={memory.M_MMAP_THRESHOLD})
    monkeypatch.setattr(memory, "glibc", lambda: old)
    assert memory.keep_freed_memory(environ={})
    assert old.calls[-1] == (memory.M_MMAP_MAX, 0)


@pytest.mark.parametrize("environ", [{"MALLOC_TRIM_THRESHOLD_": "0"}, {"MALLOC_MMAP_THRESHOLD_": "4096"},
                                     {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}])
def test_user_settings_and_switch_off_change_nothing(monkeypatch, environ):
    fake = FakeLibc()
    monkeypatch.setattr(memory, "glibc", lambda: fake)
    assert memory.keep_freed_memory(environ=environ) is False
    assert memory.keep_freed_memory(enable=False, environ={}) is False
    assert fake.calls == []


def test_no_op_without_glibc(monkeypatch):
    def not_glibc(name):
        raise ValueError(f"unrecognized configuration name {name!r}")  # what musl, macOS raise

    monkeypatch.setattr(memory.os, "confstr", not_glibc)
    assert memory.glibc() is None
    assert memory.keep_freed_memory(environ={}) is False
    monkeypatch.setattr(memory.os, "confstr", lambda name: None)
    assert memory.glibc() is None


def test_config_key_is_checked(tmp_path):
    raw = {"dataset": {"name": "semantickitti", "root": str(tmp_path)}, "model": {"name": "MinkUNet"},
           "train": {"keep_memory": "no"}}
    with pytest.raises(ConfigError, match="train.keep_memory"):
        validate_config(raw, source="toy")
    raw["train"]["keep_memory"] = False
    assert validate_config(raw, source="toy")["train"]["keep_memory"] is False
    assert validate_config({**raw, "train": {}}, source="toy")["train"]["keep_memory"] is True

