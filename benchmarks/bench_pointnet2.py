"""PointNet++ speed: forward time for one 4,096-point block and for a whole 123k-point LiDAR
scan, and the share of forward time spent in each point op (so slow ops show up).

    python benchmarks/bench_pointnet2.py [--device cpu|cuda] [--repeat 5] [--scan PATH.bin]

The scan defaults to ../shared/data's SemanticKITTI scan (123,389 points); without it a
synthetic 123,389-point LiDAR-like cloud is used (and the table says so). Times are medians
over ``--repeat`` runs after one warm-up, in eval mode under ``torch.inference_mode``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

import pcseg.ops as point_ops
from pcseg._ext import extension_loaded
from pcseg.models.pointnet2 import PointNet2MSG, PointNet2SSG
from pcseg.engine.piecewise import predict_scan

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCAN = REPO.parent / "shared/data/semantickitti/sequences/08/velodyne/000000.bin"
POINT_OPS = ("furthest_point_sample_ragged", "ball_query", "group", "three_nn", "three_interpolate",
             "knn")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_call(fn, device, repeat: int) -> float:
    """Median wall time of fn() in milliseconds after one warm-up call."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def indoor_block(device, n: int = 4096, seed: int = 0):
    """One 1 m x 1 m x 3 m room block: uniform points with RGB in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    xyz = torch.rand(1, n, 3, generator=g) * torch.tensor([1.0, 1.0, 3.0])
    return xyz.to(device), torch.rand(1, n, 3, generator=g).to(device)


def lidar_scan(path: Path | None):
    """(xyz (N,3), intensity (N,1)) float32 and a description of where they came from."""
    if path is not None and path.is_file():
        scan = np.fromfile(path, dtype=np.float32).reshape(-1, 4)
        return torch.from_numpy(scan[:, :3].copy()), torch.from_numpy(scan[:, 3:].copy()), path.name
    rng = np.random.default_rng(0)  # rings of a 64-beam sensor over a flat street
    n = 123_389
    azimuth = rng.uniform(0, 2 * np.pi, n)
    rng_m = rng.uniform(3, 60, n)
    xyz = np.stack([rng_m * np.cos(azimuth), rng_m * np.sin(azimuth), rng.normal(-1.7, 0.3, n)], 1)
    return (torch.from_numpy(xyz.astype(np.float32)), torch.from_numpy(rng.random((n, 1), np.float32)),
            "synthetic 123,389-point cloud (real scan not found)")


@contextlib.contextmanager
def labelled_point_ops():
    """Wrap every pcseg.ops call the model makes in a profiler label ``op:<name>``."""
    originals = {name: getattr(point_ops, name) for name in POINT_OPS if hasattr(point_ops, name)}

    def wrap(name, fn):
        def labelled(*args, **kwargs):
            with torch.profiler.record_function(f"op:{name}"):
                return fn(*args, **kwargs)
        return labelled

    for name, fn in originals.items():
        setattr(point_ops, name, wrap(name, fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(point_ops, name, fn)


def op_shares(fn, device) -> list[tuple[str, float, float]]:
    """(name, ms, share of the forward) for each point op (inclusive time of its call) and for
    the network's own layers: the rest of the forward, with its six largest aten kernels by
    self time."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with labelled_point_ops():
        fn()
        with torch.profiler.profile(activities=activities) as prof:
            with torch.profiler.record_function("forward"):
                fn()
                _sync(device)
    cuda = device.type == "cuda"
    total_attr = "device_time_total" if cuda else "cpu_time_total"
    self_attr = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = prof.events()
    op_ms, layer_ms = defaultdict(float), defaultdict(float)
    for event in events:
        if event.name.startswith("op:"):
            op_ms[event.name] += getattr(event, total_attr) / 1e3
            continue
        parent, inside_op = event.cpu_parent, False
        while parent is not None and not inside_op:
            inside_op = parent.name.startswith("op:")
            parent = parent.cpu_parent
        if not inside_op and event.name.startswith("aten::"):
            layer_ms[event.name] += getattr(event, self_attr) / 1e3
    if cuda:  # the "forward" label is a CPU range; on the GPU the total is the kernel time
        total_ms = sum(getattr(e, self_attr) for e in events) / 1e3
    else:
        total_ms = next(e.cpu_time_total for e in events if e.name == "forward") / 1e3
    rows = sorted(op_ms.items(), key=lambda r: -r[1])
    rows.append(("network layers (all outside op:*)", total_ms - sum(op_ms.values())))
    rows += [("  " + k, ms) for k, ms in sorted(layer_ms.items(), key=lambda r: -r[1])[:6]]
    rows.append(("forward total", total_ms))
    return [(name, ms, ms / total_ms) for name, ms in rows]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scan", type=Path, default=DEFAULT_SCAN)
    parser.add_argument("--skip-msg", action="store_true", help="SSG only (quicker)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); 1 is often faster on "
                             "a machine shared with other jobs")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"compiled extension {'loaded' if extension_loaded() else 'NOT built (reference ops)'}")

    variants = [("SSG", PointNet2SSG)] + ([] if args.skip_msg else [("MSG", PointNet2MSG)])
    rows = []
    profiles = {}
    xyz_block, rgb_block = indoor_block(device)
    scan_xyz, scan_intensity, scan_name = lidar_scan(args.scan)
    scan_xyz, scan_intensity = scan_xyz.to(device), scan_intensity.to(device)
    scan_offsets = torch.tensor([scan_xyz.shape[0]], device=device)
    for name, cls in variants:
        indoor = cls(13, in_channels=3, preset="indoor").to(device).eval()
        lidar = cls(20, in_channels=1, preset="lidar").to(device).eval()

        def block_forward(model=indoor):
            with torch.inference_mode():
                model(xyz_block, rgb_block)

        def scan_forward(model=lidar):
            with torch.inference_mode():
                model.forward_ragged(scan_xyz, scan_intensity, scan_offsets)

        def scan_predict(model=lidar):
            predict_scan(model, scan_xyz, scan_intensity, num_points=16_384, batch_size=4)

        ms = time_call(block_forward, device, args.repeat)
        rows.append((f"{name} indoor, one 4,096-point block", ms, 4096 / ms * 1e3))
        ms = time_call(scan_forward, device, max(1, args.repeat // 2))
        rows.append((f"{name} lidar, whole scan in one forward", ms, scan_xyz.shape[0] / ms * 1e3))
        ms = time_call(scan_predict, device, max(1, args.repeat // 2))
        rows.append((f"{name} lidar, predict_scan 16,384-pt pieces", ms, scan_xyz.shape[0] / ms * 1e3))
        profiles[f"{name} indoor 4,096-point block"] = op_shares(block_forward, device)
        profiles[f"{name} lidar whole scan, one forward"] = op_shares(scan_forward, device)

    print(f"\nscan: {scan_name} ({scan_xyz.shape[0]:,} points)\n")
    print(f"| {'case':<48} | {'ms (median)':>11} | {'points/s':>12} |")
    print(f"|{'-' * 50}|{'-' * 13}|{'-' * 14}|")
    for case, ms, rate in rows:
        print(f"| {case:<48} | {ms:>11.1f} | {rate:>12,.0f} |")
    for title, shares in profiles.items():
        print(f"\nTime per op, {title} (op:* = pcseg.ops calls)\n")
        print(f"| {'op':<40} | {'ms':>9} | {'share':>6} |")
        print(f"|{'-' * 42}|{'-' * 11}|{'-' * 8}|")
        for key, ms, share in shares:
            print(f"| {key:<40} | {ms:>9.1f} | {share:>6.1%} |")


if __name__ == "__main__":
    main()
