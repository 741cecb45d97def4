"""Speed of pcseg.sparse against spconv 2.3.8 on the real SemanticKITTI scan voxelized at 5 cm.

Prints one table: submanifold 32->32 and 64->64, a stride-2 (kernel 2) 32->64 layer, and the whole
MinkUNet18 forward (voxelization to per-point logits), each for pcseg and spconv in the same run
with the same weights (spconv's copy is permuted to its (C_out, k, k, k, C_in) layout; the script
also reports the largest difference between the two engines' outputs).

    python benchmarks/bench_sparse.py [--threads 1] [--repeat 3] [--widths 1.0,0.5] [--device cpu]
        [--voxel 0.05] [--amp bf16] [--no-layers]

Times are the minimum over ``--repeat`` runs after one warm-up, in milliseconds, forward only
under ``torch.no_grad()`` (except the training-step row); on the CPU they are process CPU time
unless ``--wall`` is given (see ``timing.time_round_robin``). "pcseg" includes building the kernel map (as spconv does on a new
tensor); "pcseg, map cached" reuses it, as every layer after the first at a stride does in a net.
``--voxel`` sets the networks' voxel size (the single-layer rows stay at 5 cm); ``--amp bf16`` runs
pcseg's networks under CPU autocast in bfloat16 (spconv stays in float32: its rows are then the
float32 peer). When the training width is one of ``--widths``, a last row gives the training step
over the forward of the same network.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from timing import time_round_robin

REPO = Path(__file__).resolve().parents[1]
SCAN = REPO.parent / "shared" / "data" / "semantickitti" / "sequences" / "08" / "velodyne" / "000000.bin"


def _no_sync():
    pass


def load_scan(device, voxel=0.05):
    from pcseg.ops import voxel_reduce, voxelize_batched

    pts = torch.from_numpy(np.fromfile(SCAN, dtype=np.float32).reshape(-1, 4)).to(device)
    offsets = torch.tensor([pts.shape[0]], device=device)
    coords, inverse, _ = voxelize_batched(pts[:, :3], offsets, voxel)
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
    ap.add_argument("--wall", action="store_true", help="time wall clock instead of CPU time")
    ap.add_argument("--voxel", type=float, default=0.05, help="voxel size of the MinkUNet rows (metres)")
    ap.add_argument("--amp", choices=("off", "bf16"), default="off", help="autocast pcseg's networks")
    ap.add_argument("--no-layers", action="store_true", help="skip the single-layer rows")
    args = ap.parse_args(argv)
    if not SCAN.exists():
        print(f"real scan not found: {SCAN}", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else _no_sync
    clock = time.perf_counter if (args.wall or device.type == "cuda") else time.process_time
    # Best of --repeat, pcseg and spconv round-robin. On the CPU the clock is process CPU time (all
    # threads) unless --wall: on a contended machine wall time mostly measures waiting for a core.
    timed = lambda *fns: [best for best, _ in time_round_robin(fns, args.repeat, sync=sync, clock=clock)]  # noqa: E731

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
          f"spconv: {'2.3.8' if spconv else 'absent'}; clock: "
          f"{'wall' if (args.wall or device.type == 'cuda') else 'process CPU time'}")
    print(f"networks: {args.voxel:g} m voxels ({voxel_count(args.voxel, device)} voxels), autocast {args.amp}")
    rows = _Rows()
    torch.manual_seed(0)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp == "bf16")
    layers = () if args.no_layers else (("SubMConv3d 32->32", SubMConv3d(32, 32), 32),
                                        ("SubMConv3d 64->64", SubMConv3d(64, 64), 64),
                                        ("SparseConv3d 32->64 k2 s2", SparseConv3d(32, 64, 2, 2), 32))
    forward_ms = {}
    with torch.no_grad():
        for name, layer, cin in layers:
            layer = layer.to(device)
            feats = torch.randn(coords.shape[0], cin, device=device)
            fresh = lambda: layer(SparseTensor(feats, coords, check=False))  # noqa: E731
            warm_x = SparseTensor(feats, coords)
            t_sp, diff = float("nan"), float("nan")
            if spconv is None:
                t_fresh, t_cached = timed(fresh, lambda: layer(warm_x))
            else:
                theirs = spconv_layer(spconv, layer)
                t_fresh, t_cached, t_sp = timed(fresh, lambda: layer(warm_x),
                                                lambda: theirs(spconv_tensor(spconv, feats, coords)))
                diff = _max_diff(layer(warm_x), theirs(spconv_tensor(spconv, feats, coords)),
                                 coord_shift(coords))
            rows.append((name, t_fresh, t_cached, t_sp, diff))

        for width in (float(w) for w in args.widths.split(",")):
            model = MinkUNet(20, 4, voxel_size=args.voxel, layers="18", width=width).to(device).eval()

            def run_ours(model=model):
                with amp:
                    return model.forward_ragged(pts[:, :3], pts, offsets)

            t_sp, diff = float("nan"), float("nan")
            if spconv is None:
                (t_ours,) = timed(run_ours)
            else:
                theirs = spconv_minkunet(spconv, model)
                run_theirs = lambda: theirs(pts, offsets)  # noqa: E731
                t_ours, t_sp = timed(run_ours, run_theirs)
                diff = float((run_theirs() - run_ours().float()).abs().max())
            forward_ms[width] = t_ours
            gflop = conv_gflop(model, pts, offsets)
            rows.append((f"MinkUNet18 width {width:g} forward ({pts.shape[0]} pts; {gflop:.0f} GFLOP of "
                         f"conv, {gflop / t_ours * 1e3:.0f} GFLOP/s)", t_ours, float("nan"), t_sp, diff))
    if args.train_width:
        # one training step (forward, cross-entropy, backward) with BatchNorm in training mode
        model = MinkUNet(20, 4, voxel_size=args.voxel, layers="18", width=args.train_width).to(device).train()
        labels = torch.randint(0, 20, (pts.shape[0],), device=device)

        def step(forward, autocast=False):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = torch.nn.functional.cross_entropy(forward().float(), labels)
            loss.backward()

        (t_ours,) = timed(lambda: step(lambda: model.forward_ragged(pts[:, :3], pts, offsets), args.amp == "bf16"))
        t_sp = float("nan")
        if spconv is not None:
            theirs = spconv_minkunet(spconv, model).train()
            try:
                (t_sp,) = timed(lambda: step(lambda: theirs(pts, offsets)))
            except (AssertionError, RuntimeError) as exc:  # spconv's CPU build: no backward
                print(f"spconv training step failed: {str(exc).splitlines()[-1]}")
        rows.append((f"MinkUNet18 width {args.train_width:g} train step (fwd+bwd)", t_ours, float("nan"), t_sp,
                     float("nan")))
        if args.train_width in forward_ms:
            print(f"training step / forward (width {args.train_width:g}): "
                  f"{t_ours / forward_ms[args.train_width]:.2f}")

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


def voxel_count(voxel, device) -> int:
    return load_scan(device, voxel)[2].shape[0]


def conv_gflop(model, pts, offsets) -> float:
    """Multiply-adds x 2 of every sparse conv in one forward pass (pairs x C_in x C_out x 2)."""
    from pcseg.sparse import SparseConv3d, SparseInverseConv3d, SubMConv3d

    total = [0]

    def hook(layer, inputs, output):
        x = inputs[0]
        if isinstance(layer, SubMConv3d):
            pairs = sum(x.cache.maps[("subm", x.stride, layer.kernel_size, layer.dilation)].counts)
        else:
            fine = x.stride if isinstance(layer, SparseConv3d) else x.stride // layer.stride
            key = ("down", fine, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
            pairs = sum(x.cache.maps[key][0].counts)
        total[0] += pairs * layer.in_channels * layer.out_channels * 2

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (SubMConv3d, SparseConv3d, SparseInverseConv3d))]
    with torch.no_grad():
        model.forward_ragged(pts[:, :3], pts, offsets)
    for h in handles:
        h.remove()
    return total[0] / 1e9


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
