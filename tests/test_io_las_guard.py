"""LAZ decoding runs in a forked child: a decompressor that aborts, runs away with memory or
hangs on a damaged file becomes a PointCloudFormatError naming the file; the caller survives."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from pcseg.errors import PointCloudFormatError
from pcseg.io import read_points
from pcseg.io import las as las_module

laspy = pytest.importorskip("laspy")


@pytest.fixture
def laz(tmp_path):
    if not laspy.LazBackend.detect_available():
        pytest.skip("no LAZ backend")
    header = laspy.LasHeader(point_format=3, version="1.2")
    data = laspy.LasData(header)
    data.x, data.y, data.z = np.random.default_rng(0).uniform(0, 10, (3, 500))
    path = tmp_path / "tile.laz"
    data.write(str(path))
    return path


def test_laz_reads_the_same_as_laspy(laz):
    cloud = read_points(laz)
    direct = laspy.read(str(laz))
    np.testing.assert_allclose(cloud.world_xyz(), np.column_stack([direct.x, direct.y, direct.z]), atol=1e-6)


def test_a_decompressor_abort_does_not_kill_the_caller(laz, monkeypatch):
    real = laspy.read

    def aborting(path, *args, **kwargs):  # what a decompressor crash on a damaged chunk does
        if str(path) == str(laz):
            os.write(2, b"memory allocation of 123456789 bytes failed\n")
            os.abort()
        return real(path, *args, **kwargs)

    monkeypatch.setattr(laspy, "read", aborting)
    with pytest.raises(PointCloudFormatError, match=r"tile\.laz: not a readable LAZ file .*crashed with SIGABRT: memory allocation of 123456789"):
        read_points(laz)


def test_the_child_is_bounded_in_memory_and_time():
    status, reason = las_module._run_forked(lambda: bytearray(3 << 30), budget=1 << 30, timeout=60)
    assert (status, reason) == (3, "MemoryError")
    started = time.monotonic()
    status, _ = las_module._run_forked(lambda: time.sleep(30), budget=1 << 30, timeout=0.5)
    assert status == "timeout" and time.monotonic() - started < 10
    assert las_module._run_forked(lambda: None, budget=1 << 30, timeout=60) == (0, "")
