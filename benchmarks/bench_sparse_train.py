"""Training step over eval forward of MinkUNet18 on the real scan, by malloc setting.

Each malloc setting runs in a process of its own (malloc's state cannot be reset in one process):
``glibc`` = glibc's defaults untouched, ``keep`` = :func:`pcseg.memory.keep_freed_memory`, what
``Trainer`` applies. Each process loads the network and scan, runs one unmeasured training step,
then times, on the parent's request, the eval forward (no grad) or the training step (train-mode
forward, cross-entropy, backward) with ``getrusage``: user and system CPU time, minor page faults,
and wall time. The parent asks them round-robin, in a shuffled order each round, so every setting
sees the same machine conditions. ``--separate-backward`` adds the step through the previous
backward path (the fused op ``pcseg::sparse_conv_backward`` hidden). Prints best and median per run
and the step / forward ratio of CPU time (user + system, best of each) per setting; the last line
is the summary.

    python benchmarks/bench_sparse_train.py --threads 1 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

SETTINGS = ("glibc", "keep")


def measure(fn) -> dict:
    """CPU user / system seconds, minor page faults and wall seconds of one call of ``fn``."""
    r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fn()
    r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    return {"user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime,
            "faults": r1.ru_minflt - r0.ru_minflt, "wall": w1 - w0}


def child(args) -> int:
    """One setting's process: answer each run name read from stdin with its measurement (JSON)."""
    if args.child == "keep":
        from pcseg.memory import keep_freed_memory

        if not keep_freed_memory(environ={}):
            print("keep_freed_memory did not apply (glibc needed)", file=sys.stderr)
            return 1
    from bench_sparse import load_scan

    import pcseg.sparse.functional as functional
    from pcseg.models import MinkUNet

    torch.set_num_threads(args.threads)
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

    runs = {"eval forward": forward, "train step": step, "train step, separate backward": lambda: step(False)}
    step()  # warm-up: the memory this setting keeps is in place, kernel maps' first-use costs paid
    print(json.dumps({"points": int(pts.shape[0])}), flush=True)
    for line in sys.stdin:
        print(json.dumps(measure(runs[line.strip()])), flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--repeat", type=int, default=2, help="rounds (each: every run of every setting once)")
    ap.add_argument("--width", type=float, default=1.0, help="MinkUNet18 width multiplier")
    ap.add_argument("--voxel", type=float, default=0.05, help="voxel size (metres)")
    ap.add_argument("--malloc", default=",".join(SETTINGS), help="comma-separated settings: glibc, keep")
    ap.add_argument("--separate-backward", action="store_true",
                    help="also time the step through the previous (non-fused) sparse-conv backward")
    ap.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    settings = [s.strip() for s in args.malloc.split(",") if s.strip()]
    if not settings or any(s not in SETTINGS for s in settings):
        ap.error(f"--malloc: choose from {', '.join(SETTINGS)}, got {args.malloc!r}")
    from bench_sparse import SCAN

    if not SCAN.exists():
        print(f"real scan not found: {SCAN}", file=sys.stderr)
        return 1
    from pcseg.memory import user_malloc_settings

    # glibc reads MALLOC_*_ / GLIBC_TUNABLES at start: the children run without them
    env = {k: v for k, v in os.environ.items() if not user_malloc_settings({k: v})}
    common = ["--threads", str(args.threads), "--width", str(args.width), "--voxel", str(args.voxel)]
    load_before = os.getloadavg()
    procs = {s: subprocess.Popen([sys.executable, __file__, "--child", s, *common], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, env=env) for s in settings}
    try:
        points = [json.loads(procs[s].stdout.readline())["points"] for s in settings][0]
        runs = ["eval forward", "train step"] + (["train step, separate backward"] if args.separate_backward else [])
        results = {(s, r): [] for s in settings for r in runs}
        order = [(s, r) for s in settings for r in runs]
        rng = random.Random(0)
        for _ in range(args.repeat):
            for setting, name in rng.sample(order, len(order)):
                procs[setting].stdin.write(name + "\n")
                procs[setting].stdin.flush()
                results[setting, name].append(json.loads(procs[setting].stdout.readline()))
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    load_after = os.getloadavg()

    def cpu(rows):
        return [r["user"] + r["sys"] for r in rows]

    print(f"MinkUNet18 width {args.width:g}, {args.voxel:g} m voxels, {points} points, threads {args.threads}, "
          f"{args.repeat} rounds; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print("| malloc | run | CPU ms best (median) | user ms | system ms | minor faults | wall ms | CPU / forward |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = {}
    for setting in settings:
        fwd = min(cpu(results[setting, "eval forward"]))
        for name in runs:
            rows = results[setting, name]
            total = cpu(rows)
            ratios[setting, name] = min(total) / fwd
            best = {key: min(r[key] for r in rows) for key in ("user", "sys", "faults", "wall")}
            print(f"| {setting} | {name} | {min(total) * 1e3:.0f} ({statistics.median(total) * 1e3:.0f}) | "
                  f"{best['user'] * 1e3:.0f} | {best['sys'] * 1e3:.0f} | {best['faults']} | "
                  f"{best['wall'] * 1e3:.0f} | {ratios[setting, name]:.2f} |")
    summary = ", ".join(f"{s} {ratios[s, 'train step']:.2f}x" for s in settings)
    print(f"step / forward (CPU user + system, best of {args.repeat}): {summary}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pcseg, not an installed one
    raise SystemExit(main())
