"""Float32 MinkUNet18 logits of pcseg and spconv 2.3.8 (1 and 2 threads) against a float64 pcseg run.

All runs share one set of voxels (voxelized once in float32) and one set of random weights; the
float64 network is the same pcseg model in double precision, so it is the reference that both
float32 engines approximate. Prints, per run, the largest and mean |logit - float64 logit| and how
many points are off by more than 1e-4. Summation-order differences give ~1e-7 everywhere; a few
points off by 1e-2 means lost or doubled updates.

    python benchmarks/check_sparse_float64.py [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="spconv runs per thread setting")
    args = ap.parse_args(argv)
    from bench_sparse import SCAN, load_scan
    from bench_sparse_spconv import spconv_minkunet

    if not SCAN.exists():
        print(f"real scan not found: {SCAN}", file=sys.stderr)
        return 1
    import spconv.pytorch as spconv

    from pcseg.models import MinkUNet
    from pcseg.sparse import SparseTensor

    pts, offsets, _, _ = load_scan("cpu")
    torch.manual_seed(0)
    model = MinkUNet(20, 4, voxel_size=0.05, layers="18", width=1.0).eval()
    theirs = spconv_minkunet(spconv, model)
    runs = {}
    with torch.no_grad():
        x, inverse = model.voxelize(pts[:, :3], pts, offsets)
        m64 = MinkUNet(20, 4, voxel_size=0.05, layers="18", width=1.0)
        m64.load_state_dict(model.state_dict())
        m64 = m64.double().eval()
        ref = m64.forward_sparse(SparseTensor(x.feats.double(), x.coords)).feats[inverse]
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runs[f"pcseg, {threads} thread(s)"] = model.forward_ragged(pts[:, :3], pts, offsets)
            for r in range(args.runs):
                runs[f"spconv, {threads} thread(s), run {r + 1}"] = theirs(pts, offsets)
    print(f"float64 logits: max |logit| {float(ref.abs().max()):.3g}")
    print("| run | max abs error | mean abs error | points off by > 1e-4 |")
    print("|---|---|---|---|")
    for name, logits in runs.items():
        err = (logits.double() - ref).abs()
        print(f"| {name} | {float(err.max()):.3g} | {float(err.mean()):.3g} | {int((err.amax(1) > 1e-4).sum())} |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
