"""Reader/writer throughput on the real captures in ../shared/data (skips what is absent).

Run: python benchmarks/bench_io.py   -> prints a table (best and median of several runs, ms).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def _time(fn, repeat=7):
    fn()  # warm caches and lazy imports
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1e3)
    return min(runs), statistics.median(runs)


def main() -> int:
    from pcseg.io import LabelMap, PointCloud, read_depth, read_labels, read_points, write_labels, write_points

    if not DATA.is_dir():
        print(f"{DATA} not found: nothing to measure")
        return 0
    kitti = DATA / "semantickitti" / "sequences" / "08"
    scan, label = kitti / "velodyne" / "000000.bin", kitti / "labels" / "000000.label"
    cloud = read_points(scan, labels=label)
    lm = LabelMap.builtin("semantickitti")
    tmp = Path(tempfile.mkdtemp())
    big = PointCloud(xyz=np.tile(cloud.xyz, (8, 1)), intensity=np.tile(cloud.intensity, 8),
                     labels=np.tile(cloud.labels, 8))
    cases = [
        (f"read_points .bin + .label ({len(cloud):,} pts)", lambda: read_points(scan, labels=label)),
        ("read_labels .label", lambda: read_labels(label, return_instance=True)),
        ("LabelMap.to_train", lambda: lm.to_train(cloud.labels)),
        ("write_labels .label", lambda: write_labels(tmp / "x.label", cloud.labels, cloud.instance)),
        ("write_points .ply (label colours)", lambda: write_points(tmp / "x.ply", cloud, label_map=lm)),
        ("read_points .ply (Open3D)", lambda: read_points(tmp / "x.ply")),
        ("write_points .npz", lambda: write_points(tmp / "x.npz", cloud)),
        ("read_points .npz", lambda: read_points(tmp / "x.npz")),
        (f"write+read .bin ({len(big):,} pts)",
         lambda: (write_points(tmp / "big.bin", big), read_points(tmp / "big.bin"))),
        ("read_points .las (14,408 pts, RGB)", lambda: read_points(DATA / "las" / "sample_c.las")),
        ("read_points .las (25,408 pts)", lambda: read_points(DATA / "las" / "las14_fmt6.las")),
        ("read_depth TUM 640x480 + colour",
         lambda: read_depth(DATA / "rgbd" / "TUM_depth.png", DATA / "rgbd" / "camera_primesense.json",
                            depth_scale=5000.0, color_path=DATA / "rgbd" / "TUM_color.png")),
    ]
    print(f"pcseg.io benchmark, numpy {np.__version__}, python {sys.version.split()[0]}")
    print(f"{'case':<48}{'best ms':>9}{'median ms':>11}")
    for name, fn in cases:
        best, median = _time(fn)
        print(f"{name:<48}{best:>9.1f}{median:>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
