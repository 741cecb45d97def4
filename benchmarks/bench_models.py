"""Every segmentation network of pcseg on one full HDL-64 scan: parameters and time per scan.

    python benchmarks/bench_models.py [--repeats 5] [--threads 1 2] [--models minkunet fastvoxelnet]

Each model is built from its shipped config (``configs/synthetic_<name>.yaml``, untrained
weights: speed does not depend on them) and labels a synthetic ~120k-point HDL-64 scan end to end:
numpy points in, one label per point out (tensor conversion, voxelization, network, argmax).
CPU ms is the process CPU time (``time.process_time``), steadier than wall time on a shared
machine; wall ms is printed beside it. Models are timed round-robin (benchmarks/timing.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))  # this checkout's pcseg, not another installed copy

MODELS = ("minkunet", "fastvoxelnet", "spvcnn", "ptv3")


def build(name: str):
    from pcseg.datasets.features import feature_width
    from pcseg.engine.builders import build_model
    from pcseg.engine.config import load_config

    config = load_config(REPO / "configs" / f"synthetic_{name}.yaml")
    model = build_model(config["model"], 20, feature_width(config["dataset"]["features"]))
    return model.eval()


def labeler(model, cloud):
    def run():
        with torch.inference_mode():
            xyz = torch.from_numpy(cloud.xyz)
            feats = torch.cat([xyz, torch.from_numpy(cloud.intensity)[:, None]], 1)
            offsets = torch.tensor([xyz.shape[0]])
            return model.forward_ragged(xyz, feats, offsets).argmax(1).numpy()
    return run


def main(argv=None) -> int:
    from timing import time_round_robin

    from pcseg.synth import lidar_scan

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seed", type=int, default=3, help="synthetic scan seed")
    parser.add_argument("--points", type=int, default=None, help="keep a random subset (smoke runs)")
    args = parser.parse_args(argv)

    cloud = lidar_scan(args.seed, "hdl64")
    if args.points is not None and args.points < cloud.xyz.shape[0]:
        import numpy as np

        keep = np.sort(np.random.default_rng(0).choice(cloud.xyz.shape[0], args.points, replace=False))
        cloud.xyz, cloud.intensity = cloud.xyz[keep], cloud.intensity[keep]
    models = {name: build(name) for name in args.models}
    print(f"scan: synthetic HDL-64 seed {args.seed}, {cloud.xyz.shape[0]} points")
    print(f"{'model':<14} {'params':>9} {'threads':>7} {'CPU ms best':>11} {'CPU ms med':>10} "
          f"{'wall ms best':>12} {'wall ms med':>11} {'scans/s (CPU)':>13}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        fns = [labeler(m, cloud) for m in models.values()]
        cpu = time_round_robin(fns, args.repeats, clock=time.process_time)
        wall = time_round_robin(fns, args.repeats)
        for (name, model), (cb, cm), (wb, wm) in zip(models.items(), cpu, wall):
            params = sum(p.numel() for p in model.parameters())
            print(f"{name:<14} {params:>9} {threads:>7} {cb:>11.1f} {cm:>10.1f} {wb:>12.1f} {wm:>11.1f} "
                  f"{1000.0 / cm:>13.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
