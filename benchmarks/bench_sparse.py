"""Speed of pcseg.sparse against spconv 2.3.8 on the real SemanticKITTI scan voxelized at 5 cm.

Prints one table: submanifold 32->32 and 64->64, a stride-2 (kernel 2) 32->64 layer, and the whole
MinkUNet18 forward (voxelization to per-point logits), each for pcseg and spconv in the same run
with the same weights (spconv's copy is permuted to its (C_out, k, k, k, C_in) layout; the script
also reports the largest difference between the two engines' outputs).

    python benchmarks/bench_sparse.py [--threads 1] [--repeat 3] [--widths 1.0,0.5] [--device cpu]

Times are the minimum over ``--repeat`` runs after one warm-up, in milliseconds, forward only
under ``torch.no_grad()``. "pcseg" includes building the kernel map (as spconv does on a new
tensor); "pcseg, map cached" reuses it, as every layer after the first at a stride does in a net.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SCAN = REPO.parent / "shared" / "data" / "semantickitti" / "sequences" / "08" / "velodyne" / "000000.bin"


def best_time(fn, repeat: int, sync) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def load_scan(device):
    from pcseg.ops import voxel_reduce, voxelize_batched

    pts = torch.from_numpy(np.fromfile(SCAN, dtype=np.float32).reshape(-1, 4)).to(device)
    offsets = torch.tensor([pts.shape[0]], device=device)
    coords, inverse, _ = voxelize_batched(pts[:, :3], offsets, 0.05)
    feats = voxel_reduce(pts, inverse, coords.shape[0], mode="mean")
    return pts, offsets, coords, feats


def spconv_layer(spconv, ours):
    """An spconv layer holding the same weights as our layer."""
    from pcseg.sparse import SparseConv3d, SubMConv3d

    if isinstance(ours, SubMConv3d):
        theirs = spconv.SubMConv3d(ours.in_channels, ours.out_channels, ours.kernel_size,
                                   dilation=ours.dilation, bias=ours.bias is not None)
    elif isinstance(ours, SparseConv3d):
        theirs = spconv.SparseConv3d(ours.in_channels, ours.out_channels, ours.kernel_size,
                                     ours.stride, bias=ours.bias is not None)
    with torch.no_grad():
        theirs.weight.copy_(ours.weight.permute(4, 0, 1, 2, 3))
        if ours.bias is not None:
            theirs.bias.copy_(ours.bias)
    return theirs.to(ours.weight.device)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--widths", default="1.0,0.5", help="MinkUNet18 width multipliers to time")
    ap.add_argument("--train-width", type=float, default=0.5, help="width of the timed training step (0: skip)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if not SCAN.exists():
        print(f"real scan not found: {SCAN}", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    from pcseg import _ext
    from pcseg.models import MinkUNet
    from pcseg.sparse import SparseConv3d, SparseTensor, SubMConv3d
    from bench_sparse_spconv import coord_shift, spconv_minkunet, spconv_tensor

    try:
        import spconv.pytorch as spconv
    except ImportError:
        spconv = None

    pts, offsets, coords, vfeats = load_scan(device)
    print(f"scan: {pts.shape[0]} points -> {coords.shape[0]} voxels at 5 cm; device {device}; "
          f"threads {torch.get_num_threads()}; compiled extension: {_ext.extension_loaded()}; "
          f"spconv: {'2.3.8' if spconv else 'absent'}")
    rows = _Rows()
    torch.manual_seed(0)
    with torch.no_grad():
        for name, layer, cin in (("SubMConv3d 32->32", SubMConv3d(32, 32), 32),
                                 ("SubMConv3d 64->64", SubMConv3d(64, 64), 64),
                                 ("SparseConv3d 32->64 k2 s2", SparseConv3d(32, 64, 2, 2), 32)):
            layer = layer.to(device)
            feats = torch.randn(coords.shape[0], cin, device=device)
            fresh = lambda: layer(SparseTensor(feats, coords, check=False))  # noqa: E731
            warm_x = SparseTensor(feats, coords)
            t_fresh = best_time(fresh, args.repeat, sync)
            t_cached = best_time(lambda: layer(warm_x), args.repeat, sync)
            t_sp, diff = float("nan"), float("nan")
            if spconv is not None:
                theirs = spconv_layer(spconv, layer)
                t_sp = best_time(lambda: theirs(spconv_tensor(spconv, feats, coords)), args.repeat, sync)
                diff = _max_diff(layer(warm_x), theirs(spconv_tensor(spconv, feats, coords)),
                                 coord_shift(coords))
            rows.append((name, t_fresh, t_cached, t_sp, diff))

        for width in (float(w) for w in args.widths.split(",")):
            model = MinkUNet(20, 4, voxel_size=0.05, layers="18", width=width).to(device).eval()
            t_ours = best_time(lambda: model.forward_ragged(pts[:, :3], pts, offsets), args.repeat, sync)
            t_sp, diff = float("nan"), float("nan")
            if spconv is not None:
                theirs = spconv_minkunet(spconv, model)
                run_theirs = lambda: theirs(pts, offsets)  # noqa: E731
                t_sp = best_time(run_theirs, args.repeat, sync)
                diff = float((run_theirs() - model.forward_ragged(pts[:, :3], pts, offsets)).abs().max())
            rows.append((f"MinkUNet18 width {width:g} forward ({pts.shape[0]} pts)", t_ours, float("nan"), t_sp, diff))
    if args.train_width:
        # one training step (forward, cross-entropy, backward) with BatchNorm in training mode
        model = MinkUNet(20, 4, voxel_size=0.05, layers="18", width=args.train_width).to(device).train()
        labels = torch.randint(0, 20, (pts.shape[0],), device=device)

        def step(forward):
            loss = torch.nn.functional.cross_entropy(forward(), labels)
            loss.backward()

        t_ours = best_time(lambda: step(lambda: model.forward_ragged(pts[:, :3], pts, offsets)), args.repeat, sync)
        t_sp = float("nan")
        if spconv is not None:
            theirs = spconv_minkunet(spconv, model).train()
            try:
                t_sp = best_time(lambda: step(lambda: theirs(pts, offsets)), args.repeat, sync)
            except (AssertionError, RuntimeError) as exc:  # spconv's CPU build: no backward
                print(f"spconv training step failed: {str(exc).splitlines()[-1]}")
        rows.append((f"MinkUNet18 width {args.train_width:g} train step (fwd+bwd)", t_ours, float("nan"), t_sp,
                     float("nan")))

    return 0


class _Rows:
    """Prints the table header once, then each row as soon as it is measured."""

    HEAD = ("layer", "pcseg ms", "pcseg ms, map cached", "spconv ms", "pcseg/spconv", "max |diff|")

    def __init__(self):
        print("| " + " | ".join(self.HEAD) + " |")
        print("|" + "---|" * len(self.HEAD), flush=True)

    def append(self, row):
        name, t, tc, ts, d = row
        fmt = lambda v, f: "" if v != v else format(v, f)  # noqa: E731  (NaN -> blank)
        print(f"| {name} | {t:.1f} | {fmt(tc, '.1f')} | {fmt(ts, '.1f')} | {fmt(t / ts, '.2f')} | "
              f"{fmt(d, '.2e')} |", flush=True)


def _max_diff(ours, theirs, shift) -> float:
    """Largest difference of two engines' outputs, rows matched by coordinates."""
    key = lambda c: ((c[:, 0].long() * 4096 + c[:, 1]) * 4096 + c[:, 2]) * 4096 + c[:, 3]  # noqa: E731
    local = torch.cat([ours.coords[:, :1], ours.coords[:, 1:] - shift // ours.stride], 1)
    o = torch.argsort(key(local))
    t = torch.argsort(key(theirs.indices))
    return float((ours.feats[o] - theirs.features[t]).abs().max())


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
