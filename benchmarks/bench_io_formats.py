"""pcseg's own PLY/PCD readers and its guarded LAS/LAZ path against the parsers they replace or wrap.

Run: python benchmarks/bench_io_formats.py [--points N] [--repeats R]  -> a table, ms (best, median).

A synthetic cloud (x y z intensity label, float32/uint32) is written in each format; each row
times ``read_points`` and, where one exists, the peer reading the same file (Open3D's tensor
reader for PLY/PCD, a bare ``laspy.read`` for LAS/LAZ), round-robin so both see the same load.
The LAZ row shows what decoding in a forked child (crash isolation) costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import time_round_robin  # noqa: E402


def _files(folder: Path, n: int) -> dict:
    import laspy
    import open3d as o3d

    from pcseg.io import PointCloud, write_points

    rng = np.random.default_rng(0)
    xyz = rng.uniform(-50, 50, (n, 3)).astype(np.float32)
    intensity = rng.uniform(0, 1, n).astype(np.float32)
    cloud = PointCloud(xyz=xyz, intensity=intensity, labels=rng.integers(0, 20, n))
    files = {"ply binary": write_points(folder / "c.ply", cloud),
             "ply ascii": write_points(folder / "a.ply", cloud, ascii=True)}
    pcd = o3d.t.geometry.PointCloud()
    pcd.point["positions"] = o3d.core.Tensor(xyz)
    pcd.point["intensity"] = o3d.core.Tensor(intensity[:, None])
    for name, kwargs in (("pcd binary", {}), ("pcd ascii", {"write_ascii": True}),
                         ("pcd binary_compressed", {"compressed": True})):
        path = folder / f"{name.split()[1]}.pcd"
        o3d.t.io.write_point_cloud(str(path), pcd, **kwargs)
        files[name] = path
    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales = [0.001] * 3
    las = laspy.LasData(header)
    las.x, las.y, las.z = xyz.T
    las.intensity = (intensity * 65535).astype(np.uint16)
    las.write(str(folder / "c.las"))
    las.write(str(folder / "c.laz"))
    files["las"], files["laz"] = folder / "c.las", folder / "c.laz"
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=123_389)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    import laspy
    import open3d as o3d

    from pcseg.io import read_points

    with tempfile.TemporaryDirectory() as tmp:
        files = _files(Path(tmp), args.points)
        print(f"pcseg readers vs peers, {args.points:,} points, best / median of {args.repeats} (ms)")
        print(f"{'format':<24}{'pcseg':>16}{'peer':>22}")
        for name, path in files.items():
            peer_name = "laspy.read" if name.startswith("la") else "Open3D"
            peer = (lambda p=path: laspy.read(str(p))) if peer_name == "laspy.read" else \
                (lambda p=path: o3d.t.io.read_point_cloud(str(p)))
            ours, theirs = time_round_robin([lambda p=path: read_points(p), peer], args.repeats)
            print(f"{name:<24}{ours[0]:>8.1f} / {ours[1]:<7.1f}{theirs[0]:>8.1f} / {theirs[1]:<7.1f} {peer_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
