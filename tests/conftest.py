"""Shared fixtures: real data under ../shared (skipped when absent), devices, dtypes."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def _devices():
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


@pytest.fixture(params=_devices())
def device(request):
    """Every device that exists here: 'cpu', plus 'cuda' when a GPU is present."""
    return request.param


@pytest.fixture
def shared_data() -> Path:
    """../shared/data with the real captures; the test skips cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data (real captures) is not present")
    return SHARED_DATA


@pytest.fixture
def kitti_scan(shared_data) -> tuple[Path, Path]:
    """(velodyne .bin, .label) of the real 123,389-point SemanticKITTI scan."""
    seq = shared_data / "semantickitti" / "sequences" / "08"
    return seq / "velodyne" / "000000.bin", seq / "labels" / "000000.label"


def cuda_only():
    import torch

    return pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _torch_threads(count: int):
    """Sets the intra-op torch threads for a test and restores them after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """One intra-op torch thread for the test, restored after it.

    Models and sparse layers run many small kernels; on a 2-core machine shared with other work,
    OpenMP barriers across two threads make them 2-4x slower than one thread.
    """
    yield from _torch_threads(1)


@pytest.fixture
def four_threads():
    """Four intra-op torch threads for the test, restored after it: the CPU kernels then split
    large inputs into four chunks, which is what the chunk-border tests need."""
    yield from _torch_threads(4)
