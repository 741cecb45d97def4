"""Streaming LAS/LAZ segmentation: peak memory and points/s on a large synthetic LAZ tile.

Run: python benchmarks/bench_las_stream.py --points 5000000   -> prints a table.

Writes a synthetic airborne-like LAZ (terrain, box buildings, canopy; UTM-sized coordinates,
LAS 1.4 point format 6, about 10 points/m^2) chunk by chunk, then segments it in a child process
(``segment_las``, the code behind ``pcseg segment --format laz``) and reports that process's peak
resident memory (``ru_maxrss``) next to a child that only imports pcseg and torch, plus the time
``pcseg info`` takes to answer from the header. The model is the bundled airborne checkpoint when
it exists, else a randomly initialised MinkUNet of the same size class (speed only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's pcseg, not an installed one


def write_big_laz(path: Path, points: int, chunk: int = 1_000_000, density: float = 10.0, seed: int = 0) -> Path:
    """A synthetic LAS 1.4 / format 6 LAZ tile of ``points`` points written in chunks (flat memory)."""
    import laspy

    rng = np.random.default_rng(seed)
    side = float(np.sqrt(points / density))
    header = laspy.LasHeader(version="1.4", point_format=6)
    header.scales = np.array([0.01, 0.01, 0.01])
    header.offsets = np.array([500000.0, 5400000.0, 0.0])
    with laspy.open(str(path), mode="w", header=header, do_compress=path.suffix == ".laz") as writer:
        done = 0
        while done < points:
            n = min(chunk, points - done)
            # flight lines: file order sweeps y, like a real strip
            y = 5400000.0 + (done + np.arange(n)) / points * side + rng.normal(0, 0.3, n)
            x = 500000.0 + rng.uniform(0, side, n)
            ground = 200 + 8 * np.sin(x / 150.0) + 5 * np.cos(y / 110.0)
            cell = (np.floor(x / 40) * 7919 + np.floor(y / 40)) % 5
            building = (cell == 0) & ((x % 40) < 22) & ((y % 40) < 18)
            tree = (cell == 1) & (rng.random(n) < 0.7)
            z = ground + np.where(building, 9.0, 0.0) + np.where(tree, rng.uniform(1, 18, n), 0.0)
            record = laspy.ScaleAwarePointRecord.zeros(n, header=header)
            record.x, record.y, record.z = x, y, z
            record.intensity = rng.integers(200, 4000, n).astype(np.uint16)
            record.return_number = np.ones(n, np.uint8)
            record.number_of_returns = np.ones(n, np.uint8)
            record.gps_time = done + np.arange(n) * 1e-5
            writer.write_points(record)
            done += n
    return path


def _child(args) -> int:
    """Runs inside the measured process: segment and print stats + peak RSS as JSON."""
    import torch

    torch.set_num_threads(args.threads)
    if args.mode == "import":
        import pcseg.engine.las_stream  # noqa: F401
    else:
        from pcseg.engine.las_stream import segment_las

        seg = _segmenter(args.checkpoint)
        stats = segment_las(seg, args.input, args.output, chunk_points=args.chunk_points, progress=False)
        print(json.dumps({**stats, "class_counts": None, "model": repr(seg)}))
    print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return 0


def _segmenter(checkpoint):
    from pcseg.engine.segmenter import Segmenter

    if checkpoint and Path(checkpoint).is_file():
        return Segmenter.from_checkpoint(checkpoint)
    try:
        from pcseg.pretrained import checkpoint_path

        return Segmenter.from_checkpoint(checkpoint_path("airborne"))
    except Exception:  # no bundled airborne model: a random one of the same size class
        import torch

        from pcseg.engine.builders import build_model
        from pcseg.io import LabelMap

        torch.manual_seed(0)
        label_map = LabelMap.builtin("asprs")
        model = build_model({"name": "MinkUNet", "voxel_size": 1.0, "layers": [1] * 8, "width": 0.5},
                            label_map.num_classes, 4, label_map.name)
        return Segmenter(model, label_map, ["xyz", "intensity"])


def _run_child(*extra) -> tuple[list[dict], float]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", *extra], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")], time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5_000_000)
    parser.add_argument("--chunk-points", type=int, default=1_000_000)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", default=None, help="folder for the synthetic tile (default: a temporary one)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="segment", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        src = tmp / "big.laz"
        start = time.perf_counter()
        write_big_laz(src, args.points)
        made = time.perf_counter() - start
        size_mb = src.stat().st_size / 2**20
        common = ["--threads", str(args.threads), "--chunk-points", str(args.chunk_points)]
        if args.checkpoint:
            common += ["--checkpoint", args.checkpoint]
        base, _ = _run_child("--mode", "import", *common)
        result, wall = _run_child("--input", str(src), "--output", str(tmp / "out.laz"), *common)
        stats, rss = result[0], result[1]["maxrss_mb"]
        from pcseg.io.las import las_header_summary

        start = time.perf_counter()
        summary = las_header_summary(src)
        header_ms = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pcseg", "info", str(src)], capture_output=True, cwd=REPO, check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
        info_s = time.perf_counter() - start
    assert summary["points"] == args.points
    print(f"streaming LAS/LAZ segmentation, {args.points:,} points, chunks of {args.chunk_points:,}, "
          f"torch threads {args.threads}")
    print(f"model: {stats['model']}")
    rows = [
        ("synthetic LAZ written", f"{size_mb:.0f} MB in {made:.1f} s"),
        ("tiles (side)", f"{stats['tiles']} ({stats['tile_size']:.0f} m)"),
        ("segment_las wall", f"{stats['seconds']:.1f} s"),
        ("throughput", f"{stats['points_per_second']:,.0f} points/s"),
        ("peak RSS, segmenting", f"{rss:,.0f} MB"),
        ("peak RSS, import only", f"{base[0]['maxrss_mb']:,.0f} MB"),
        ("las_header_summary", f"{header_ms:.1f} ms"),
        ("`pcseg info` CLI (with start-up)", f"{info_s:.2f} s"),
    ]
    for name, value in rows:
        print(f"{name:<36} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
