"""Speed of ConfusionMatrix.update (issue 3: 10M points under 50 ms on the 2-core CPU).

Run: python benchmarks/bench_metrics.py [--points 10000000] [--repeats 7]
Prints one row per case: best and median wall time over the repeats, and the best CPU time
of this process (all its threads) for one call.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from pcseg.metrics import ConfusionMatrix, boundary_mask

NUM_CLASSES = 20


def timed(fn, repeats: int, sync=None) -> tuple[float, float, float]:
    """(best wall ms, median wall ms, best CPU ms of this process). CPU time is less sensitive
    to other processes on a shared machine than wall time (it still pays for shared caches)."""
    fn()  # warm-up: allocates the reused key buffer, loads kernels
    times, cpu = [], []
    for _ in range(repeats):
        if sync:
            sync()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(times) * 1e3, statistics.median(times) * 1e3, min(cpu) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n = args.points
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, NUM_CLASSES, (n,), generator=gen)
    pred = torch.where(torch.rand(n, generator=gen) < 0.8, target, torch.randint(0, NUM_CLASSES, (n,), generator=gen))

    rows = []

    def case(name, fn, sync=None):
        rows.append((name, *timed(fn, args.repeats, sync)))

    cm = ConfusionMatrix(NUM_CLASSES, ignore_index=0)
    case("update, torch int64, ignore 0", lambda: cm.update(pred, target))
    p32, t32 = pred.int(), target.int()
    case("update, torch int32, ignore 0", lambda: cm.update(p32, t32))
    pn, tn = pred.numpy(), target.numpy()
    case("update, numpy int64, ignore 0", lambda: cm.update(pn, tn))
    pu, tu = pn.astype(np.uint32), tn.astype(np.uint32)
    case("update, numpy uint32 (.label), ignore 0", lambda: cm.update(pu, tu))
    case("baseline: bincount(target*C+pred) int64, masked",
         lambda: torch.bincount((target * NUM_CLASSES + pred)[target != 0], minlength=NUM_CLASSES**2))
    case("all scores (iou, miou, fwiou, ...)", lambda: (cm.iou(), cm.miou(), cm.fwiou(), cm.accuracy(), cm.mean_accuracy()))
    if torch.cuda.is_available():
        pc, tc = pred.cuda(), target.cuda()
        gpu = ConfusionMatrix(NUM_CLASSES, ignore_index=0)
        case("update, CUDA int64, ignore 0", lambda: gpu.update(pc, tc), sync=torch.cuda.synchronize)

    scan = Path(__file__).resolve().parents[2] / "shared/data/semantickitti/sequences/08"
    if (scan / "velodyne/000000.bin").exists():
        xyz = np.fromfile(scan / "velodyne/000000.bin", dtype=np.float32).reshape(-1, 4)[:, :3]
        raw = (np.fromfile(scan / "labels/000000.label", dtype=np.uint32) & 0xFFFF).astype(np.int64)
        case(f"boundary_mask real scan {len(xyz)} pts r=0.2 m",
             lambda: boundary_mask(xyz, raw, 0.2, ignore_index=0))

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only"
    print(f"ConfusionMatrix benchmark: {n:,} points, {NUM_CLASSES} classes, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {device}")
    width = max(len(r[0]) for r in rows)
    print(f"{'case'.ljust(width)}  {'best ms':>9}  {'median ms':>9}  {'CPU ms':>9}")
    for name, best, median, cpu in rows:
        print(f"{name.ljust(width)}  {best:9.1f}  {median:9.1f}  {cpu:9.1f}")


if __name__ == "__main__":
    main()
