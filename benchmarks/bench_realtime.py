"""The bundled street-scan models on the real 123,389-point HDL-64 scan: time per scan and memory.

    python benchmarks/bench_realtime.py [--models realtime outdoor] [--threads 1 2] [--repeats 10]

Each model is loaded from its bundled checkpoint (``pcseg.pretrained.checkpoint_path(name)``) and
labels ../shared/data/semantickitti/sequences/08/velodyne/000000.bin end to end through
``Segmenter`` (a PointCloud in, one train id per point out: tensor conversion, voxelization,
network, argmax), exactly what ``pcseg segment`` does per file after reading it. CPU ms is the
process CPU time (``time.process_time``, all threads summed), steadier than wall time on a
shared machine; wall ms is the time a caller waits. ``scans/s`` is 1000 / median wall ms.

Each model runs in its own fresh process, so ``peak MB`` is that process's peak resident memory
(``ru_maxrss``: Python + torch + the model + one scan's activations) and ``+MB`` is its growth
over the resident memory after loading the model and the scan (what labeling itself adds).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's pcseg, not another installed copy
SCAN = REPO.parent / "shared" / "data" / "semantickitti" / "sequences" / "08" / "velodyne" / "000000.bin"


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(name: str, threads: list[int], repeats: int) -> dict:
    """Time model ``name`` (bundled name or checkpoint path) on the scan at each thread count; this process's memory figures."""
    from pcseg.engine.segmenter import Segmenter
    from pcseg.io import read_points
    from pcseg.pretrained import checkpoint_path

    cloud = read_points(SCAN)
    ckpt = Path(name) if name.endswith(".pt") else checkpoint_path(name)  # a bundled name or a run's file
    seg = Segmenter.from_checkpoint(ckpt, threads=1)
    before = _rss_mb()
    out = {"model": name, "points": int(cloud.xyz.shape[0]), "model_class": type(seg.model).__name__,
           "params": sum(p.numel() for p in seg.model.parameters()), "times": {}}
    for t in threads:
        seg.threads = t
        seg(cloud)  # warm-up
        cpu, wall = [], []
        for _ in range(repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            seg(cloud)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        out["times"][t] = {"cpu_best": 1e3 * min(cpu), "cpu_med": 1e3 * statistics.median(cpu),
                           "wall_best": 1e3 * min(wall), "wall_med": 1e3 * statistics.median(wall)}
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["labeling_mb"] = out["peak_mb"] - before
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["realtime", "outdoor"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.threads, args.repeats)))
        return 0
    if not SCAN.is_file():
        print(f"needs the real scan {SCAN} (../shared/data)")
        return 1
    print(f"scan: {SCAN.relative_to(REPO.parent)}")
    print(f"{'model':<10} {'class':<13} {'params':>9} {'threads':>7} {'CPU ms best':>11} {'CPU ms med':>10} "
          f"{'wall ms best':>12} {'wall ms med':>11} {'scans/s':>7} {'peak MB':>7} {'+MB':>5}")
    for name in args.models:
        cmd = [sys.executable, __file__, "--child", name, "--repeats", str(args.repeats),
               "--threads", *map(str, args.threads)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        for t, m in r["times"].items():
            print(f"{name:<10} {r['model_class']:<13} {r['params']:>9} {t:>7} {m['cpu_best']:>11.1f} "
                  f"{m['cpu_med']:>10.1f} {m['wall_best']:>12.1f} {m['wall_med']:>11.1f} "
                  f"{1e3 / m['wall_med']:>7.1f} {r['peak_mb']:>7.0f} {r['labeling_mb']:>5.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
