"""Training step over eval forward of MinkUNet18 on the real scan, by malloc setting.

Each round takes the malloc settings in a shuffled order. For each: apply it, run one unmeasured
training step (so the memory it keeps or gives back is in place), then time the eval forward (no
grad) and the training step (train-mode forward, cross-entropy, backward) in shuffled order, each
with ``getrusage``: user and system CPU time, minor page faults, and wall time.

Settings: ``glibc`` = glibc's defaults as they stand once the first large block was freed (mmap
threshold 32 MiB, trim threshold 64 MiB; ``malloc_trim(0)`` first gives back what an earlier
setting kept); ``keep`` = :func:`pcseg.memory.keep_freed_memory`, what ``Trainer`` applies.
``--separate-backward`` adds the step through the previous backward path (the fused op
``pcseg::sparse_conv_backward`` hidden). Prints best and median per run and the step / forward
ratio of CPU time (user + system, best of each) per setting; the last line is the summary.

    python benchmarks/bench_sparse_train.py --threads 1 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

SETTINGS = ("glibc", "keep")


def apply_setting(name: str) -> None:
    """Put glibc's malloc into setting ``name`` (see the module docstring)."""
    from pcseg.memory import M_MMAP_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, glibc, keep_freed_memory

    libc = glibc()
    if libc is None:
        raise SystemExit("the malloc settings need glibc")
    if name == "keep":
        if not keep_freed_memory(environ={}):
            raise SystemExit("keep_freed_memory did not apply")
        return
    libc.mallopt(M_MMAP_MAX, 65536)
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)
    libc.malloc_trim(0)


def measure(fn) -> dict:
    """CPU user / system seconds, minor page faults and wall seconds of one call of ``fn``."""
    r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fn()
    r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    return {"user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime,
            "faults": r1.ru_minflt - r0.ru_minflt, "wall": w1 - w0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--repeat", type=int, default=2, help="rounds (each setting: warm-up step, forward, step)")
    ap.add_argument("--width", type=float, default=1.0, help="MinkUNet18 width multiplier")
    ap.add_argument("--voxel", type=float, default=0.05, help="voxel size (metres)")
    ap.add_argument("--malloc", default=",".join(SETTINGS), help="comma-separated settings: glibc, keep")
    ap.add_argument("--separate-backward", action="store_true",
                    help="also time the step through the previous (non-fused) sparse-conv backward")
    args = ap.parse_args(argv)
    settings = [s.strip() for s in args.malloc.split(",") if s.strip()]
    if not settings or any(s not in SETTINGS for s in settings):
        ap.error(f"--malloc: choose from {', '.join(SETTINGS)}, got {args.malloc!r}")
    from bench_sparse import SCAN, load_scan

    if not SCAN.exists():
        print(f"real scan not found: {SCAN}", file=sys.stderr)
        return 1
    import pcseg.sparse.functional as functional
    from pcseg.models import MinkUNet

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    pts, offsets, _, _ = load_scan("cpu", args.voxel)
    torch.manual_seed(0)
    model = MinkUNet(20, 4, voxel_size=args.voxel, layers="18", width=args.width)
    labels = torch.randint(0, 20, (pts.shape[0],))

    def forward():
        model.eval()
        with torch.no_grad():
            model.forward_ragged(pts[:, :3], pts, offsets)

    def step(fused=True):
        model.train()
        model.zero_grad(set_to_none=True)
        original = functional.has_compiled_kernel
        if not fused:  # hide the fused op: the backward takes its previous path
            functional.has_compiled_kernel = lambda op, dev: op != "sparse_conv_backward" and original(op, dev)
        try:
            logits = model.forward_ragged(pts[:, :3], pts, offsets)
            torch.nn.functional.cross_entropy(logits, labels).backward()
        finally:
            functional.has_compiled_kernel = original

    runs = {"eval forward": forward, "train step": step}
    if args.separate_backward:
        runs["train step, separate backward"] = lambda: step(fused=False)
    results = {(s, r): [] for s in settings for r in runs}
    rng = random.Random(0)
    for _ in range(args.repeat):
        for setting in rng.sample(settings, len(settings)):
            apply_setting(setting)
            step()  # warm-up: the memory this setting keeps (or gives back) is in place
            for name in rng.sample(list(runs), len(runs)):
                results[setting, name].append(measure(runs[name]))
    load_after = os.getloadavg()

    def best(rows, key):
        return min(r[key] for r in rows)

    def cpu(rows):
        return [r["user"] + r["sys"] for r in rows]

    print(f"MinkUNet18 width {args.width:g}, {args.voxel:g} m voxels, {pts.shape[0]} points, threads {args.threads}, "
          f"{args.repeat} rounds; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print("| malloc | run | CPU ms best (median) | user ms | system ms | minor faults | wall ms | CPU / forward |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = {}
    for setting in settings:
        fwd = min(cpu(results[setting, "eval forward"]))
        for name in runs:
            rows = results[setting, name]
            total = cpu(rows)
            ratio = min(total) / fwd
            ratios[setting, name] = ratio
            print(f"| {setting} | {name} | {min(total) * 1e3:.0f} ({statistics.median(total) * 1e3:.0f}) | "
                  f"{best(rows, 'user') * 1e3:.0f} | {best(rows, 'sys') * 1e3:.0f} | {best(rows, 'faults')} | "
                  f"{best(rows, 'wall') * 1e3:.0f} | {ratio:.2f} |")
    summary = ", ".join(f"{s} {ratios[s, 'train step']:.2f}x" for s in settings)
    print(f"step / forward (CPU user + system, best of {args.repeat}): {summary}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pcseg, not an installed one
    raise SystemExit(main())
