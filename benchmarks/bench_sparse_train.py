"""Training step over forward of MinkUNet18 on the real scan, fused vs separate sparse-conv backward.

Times, round-robin in one process (``timing.time_round_robin``): the eval forward (no grad), one
training step (train-mode forward, cross-entropy, backward) with the fused backward op
``pcseg::sparse_conv_backward``, and the same step with the previous backward (the forward kernel
on the transposed map for the input gradient, then ``sparse_conv_weight_grad``). Prints best and
median of each and the step / forward ratios.

    python benchmarks/bench_sparse_train.py [--threads 1] [--repeat 3] [--width 1.0] [--voxel 0.05] [--wall]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from timing import time_round_robin


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--width", type=float, default=1.0, help="MinkUNet18 width multiplier")
    ap.add_argument("--voxel", type=float, default=0.05, help="voxel size (metres)")
    ap.add_argument("--wall", action="store_true", help="wall clock instead of process CPU time")
    args = ap.parse_args(argv)
    from bench_sparse import SCAN, load_scan

    if not SCAN.exists():
        print(f"real scan not found: {SCAN}", file=sys.stderr)
        return 1
    import pcseg.sparse.functional as functional
    from pcseg.models import MinkUNet

    torch.set_num_threads(args.threads)
    pts, offsets, _, _ = load_scan("cpu", args.voxel)
    torch.manual_seed(0)
    model = MinkUNet(20, 4, voxel_size=args.voxel, layers="18", width=args.width)
    labels = torch.randint(0, 20, (pts.shape[0],))
    fused_available = functional.has_compiled_kernel("sparse_conv_backward", "cpu")

    def forward():
        model.eval()
        with torch.no_grad():
            model.forward_ragged(pts[:, :3], pts, offsets)

    def step(fused):
        def run():
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
        return run

    fns = [forward, step(False)] + ([step(True)] if fused_available else [])
    clock = time.perf_counter if args.wall else time.process_time
    times = time_round_robin(fns, args.repeat, clock=clock)
    names = ["eval forward", "train step, separate backward", "train step, fused backward"]
    print(f"MinkUNet18 width {args.width:g}, {args.voxel:g} m voxels, {pts.shape[0]} points, threads "
          f"{args.threads}, clock {'wall' if args.wall else 'process CPU time'}, best of {args.repeat}")
    print("| run | best ms | median ms | best / forward |")
    print("|---|---|---|---|")
    for name, (best, median) in zip(names, times):
        print(f"| {name} | {best:.0f} | {median:.0f} | {best / times[0][0]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
