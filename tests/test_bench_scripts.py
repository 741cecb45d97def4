"""The GPU benchmark script runs end to end (on the CPU, tiny), so it has not rotted by the time a
session gets a GPU, and its brute-force peers agree with pcseg's neighbours."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_ops_gpu_smoke_run_on_cpu(capsys, tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_ops_gpu
    finally:
        sys.path.remove(str(BENCHMARKS))
    # no scan at that path: the script falls back to a synthetic LiDAR scan
    argv = ["--device", "cpu", "--points", "3000", "--repeats", "1", "--scan", str(tmp_path / "absent.bin")]
    assert bench_ops_gpu.main(argv) == 0
    out = capsys.readouterr().out
    assert "synthetic LiDAR scan (3,000 points)" in out
    assert "ball query 0, kNN 0" in out  # same neighbours as brute force
    from pcseg._ext import extension_loaded

    # ours and the peer; voxelize also times the bare operator when the extension is built
    rows = {"voxelize 5 cm": 3 if extension_loaded() else 2, "ball query r=0.8 k=32": 2, "kNN k=16": 2,
            "FPS 3000->750": 2}
    for op, count in rows.items():
        assert sum(line.startswith(op) for line in out.splitlines()) == count, op


def test_bench_las_stream_smoke_run(capsys, tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_las_stream
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert bench_las_stream.main(["--points", "20000", "--chunk-points", "7000", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "20,000 points" in out and "points/s" in out and "peak RSS, segmenting" in out


def test_bench_threads_smoke_run(capsys, kitti_scan):
    # one round, one policy: the workers start, the busy child comes and goes, the per-voxel
    # labels of the stage breakdown equal the per-point softmax argmax (asserted in the worker)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_threads
    finally:
        sys.path.remove(str(BENCHMARKS))
    argv = ["--rounds", "1", "--policies", "passive", "--settings", "1,auto", "--workloads", "segment",
            "--scan", str(kitti_scan[0])]
    assert bench_threads.main(argv) == 0
    out = capsys.readouterr().out
    assert "segment: wall seconds" in out and "Segmenter stages" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("passive ")]
    assert [row[1] for row in rows] == ["1", "auto"]
    assert "network" in out and "argmax per voxel" in out
