"""Point-op speed on the real 123k-point SemanticKITTI scan against the peers users have today.

Run: ``python benchmarks/bench_ops.py [--repeats 15]``. Prints one table: best and median wall
time per implementation, and the speed-up of pcseg over the fastest peer (best-of-N ratio). The
implementations of one op are timed round-robin, so they share the machine's conditions.
Peers are timed without their one-off set-up (Open3D PointCloud construction, spconv generator
construction); tree/index builds that depend on the points are included, like ours.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np
import torch
from timing import time_round_robin

REPO = Path(__file__).resolve().parents[1]
SCAN = REPO.parent / "shared" / "data" / "semantickitti" / "sequences" / "08" / "velodyne" / "000000.bin"


def add_op(rows, op, implementations, repeats):
    """Times (name, fn, is_ours[, own_repeats]) implementations of one op together into ``rows``."""
    fns = [impl[1] for impl in implementations]
    own_repeats = [impl[3] if len(impl) > 3 else None for impl in implementations]
    for impl, (best, median) in zip(implementations, time_round_robin(fns, repeats, own_repeats=own_repeats)):
        rows.append((op, impl[0], best, median, impl[2]))


def torch_unique_voxelize(points: torch.Tensor, voxel_size: float):
    """The best a torch user writes by hand: one ``torch.unique`` over packed int64 cell keys."""
    cells = torch.floor(points / voxel_size).long()
    cells -= cells.min(0).values
    keys = (cells[:, 0] << 42) | (cells[:, 1] << 21) | cells[:, 2]
    return torch.unique(keys, return_inverse=True, return_counts=True)


def optional(name):
    try:
        return importlib.import_module(name)
    except Exception:  # missing or broken peer: its rows are skipped
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    if not SCAN.exists():
        print(f"bench_ops: {SCAN} not found (../shared/data)", file=sys.stderr)
        return 2
    from pcseg._ext import extension_loaded
    from pcseg.ops import ball_query, furthest_point_sample, knn, voxelize

    if not extension_loaded():
        print("bench_ops: pcseg._C is not built; timing the pure-PyTorch references", file=sys.stderr)
    o3d = optional("open3d")
    from scipy.spatial import cKDTree

    points = np.fromfile(SCAN, dtype=np.float32).reshape(-1, 4)[:, :3].copy()
    pts = torch.from_numpy(points)
    rng = np.random.default_rng(0)
    queries_np = points[rng.choice(points.shape[0], 4096, replace=False)]
    queries = torch.from_numpy(queries_np)
    fps_np = points[rng.choice(points.shape[0], 16384, replace=False)]
    fps_pts = torch.from_numpy(fps_np)
    r = args.repeats
    rows = []  # (op, implementation, best, median, is_ours)

    # --- voxelize at 5 cm -------------------------------------------------------------------
    def hand_unique():
        return torch_unique_voxelize(pts, 0.05)

    voxelize_impls = [("pcseg.ops.voxelize", lambda: voxelize(pts, 0.05), True),
                      ("torch.unique over packed keys", hand_unique, False)]
    if o3d is not None:
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
        voxelize_impls.append(("Open3D voxel_down_sample", lambda: pcd.voxel_down_sample(0.05), False))
    spconv_utils = optional("spconv.pytorch.utils")
    if spconv_utils is not None:
        # spconv's CPU PointToVoxel allocates a dense table of the whole range (27 GB for this
        # scan at 5 cm), so it gets a 40 x 40 x 6 m crop around the sensor (it drops the rest).
        gen = spconv_utils.PointToVoxel(
            vsize_xyz=[0.05] * 3, coors_range_xyz=[-20.0, -20.0, -3.0, 20.0, 20.0, 3.0], num_point_features=3,
            max_num_voxels=points.shape[0], max_num_points_per_voxel=1,
        )
        voxelize_impls.append(("spconv PointToVoxel (40x40x6 m crop)", lambda: gen(pts), False))
    add_op(rows, "voxelize 5 cm", voxelize_impls, r)

    # --- ball query: 4096 queries, r = 0.8 m, k = 32 -------------------------------------------
    def ckdtree_ball():
        tree = cKDTree(points)
        return tree.query(queries_np, k=32, distance_upper_bound=0.8)

    ball_impls = [("pcseg.ops.ball_query", lambda: ball_query(pts, queries, 0.8, 32), True),
                  ("scipy cKDTree build+query", ckdtree_ball, False)]
    knn_impls = [("pcseg.ops.knn", lambda: knn(pts, queries, 16), True),
                 ("scipy cKDTree build+query", lambda: cKDTree(points).query(queries_np, k=16), False)]
    if o3d is not None:
        o3d_points = o3d.core.Tensor(points)
        o3d_queries = o3d.core.Tensor(queries_np)

        def o3d_hybrid():
            nns = o3d.core.nns.NearestNeighborSearch(o3d_points)
            nns.hybrid_index(0.8)
            return nns.hybrid_search(o3d_queries, 0.8, 32)

        def o3d_knn():
            nns = o3d.core.nns.NearestNeighborSearch(o3d_points)
            nns.knn_index()
            return nns.knn_search(o3d_queries, 16)

        ball_impls.append(("Open3D hybrid_search", o3d_hybrid, False))
        knn_impls.append(("Open3D knn_search", o3d_knn, False))
    add_op(rows, "ball query r=0.8 k=32", ball_impls, r)
    # --- kNN k = 16 ----------------------------------------------------------------------------
    add_op(rows, "kNN k=16", knn_impls, r)

    # --- FPS 16384 -> 4096 -----------------------------------------------------------------------
    def numpy_fps():
        chosen = np.empty(4096, dtype=np.int64)
        min_dist = np.full(fps_np.shape[0], np.inf, dtype=np.float32)
        current = 0
        for s in range(4096):
            chosen[s] = current
            d = ((fps_np - fps_np[current]) ** 2).sum(1)
            np.minimum(min_dist, d, out=min_dist)
            current = int(min_dist.argmax())
        return chosen

    fps_impls = [("pcseg.ops.furthest_point_sample", lambda: furthest_point_sample(fps_pts, 4096), True)]
    if o3d is not None:
        fps_pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(fps_np.astype(np.float64)))
        fps_impls.append(("Open3D farthest_point_down_sample", lambda: fps_pcd.farthest_point_down_sample(4096), False))
    fps_impls.append(("numpy loop", numpy_fps, False, max(3, r // 5)))  # 2 s a call: fewer repeats
    add_op(rows, "FPS 16384->4096", fps_impls, r)

    print(f"pcseg point ops on the real scan ({points.shape[0]:,} points), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, extension {'built' if extension_loaded() else 'NOT built'}")
    print(f"{'op':24s} {'implementation':36s} {'best ms':>9s} {'median ms':>10s} {'speed-up':>9s}")
    for op in dict.fromkeys(row[0] for row in rows):
        group_rows = [row for row in rows if row[0] == op]
        ours = [row for row in group_rows if row[4]]
        peers = [row for row in group_rows if not row[4]]
        fastest_peer = min(row[2] for row in peers) if peers else float("nan")
        for row in group_rows:
            speed = f"{fastest_peer / row[2]:8.1f}x" if row[4] else ""
            print(f"{row[0]:24s} {row[1]:36s} {row[2]:9.2f} {row[3]:10.2f} {speed:>9s}")
        del ours
    return 0


if __name__ == "__main__":
    sys.exit(main())
