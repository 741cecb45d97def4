"""Speed of panoptic scoring and centre clustering on one LiDAR scan.

Run: python benchmarks/bench_panoptic.py [--scan velodyne.bin --labels scan.label] [--official eval_np.py]
     [--repeats 5]
Rows: PanopticQuality.update on the scan (prediction = ground truth with instances split, merged
and 8 % of the classes changed), the official semantic-kitti-api PanopticEval.addBatch on the same
input when ``--official`` names its ``auxiliary/eval_np.py``, and cluster_centres of the thing
points with their exact instance centres. Without ``--scan`` (or when it is absent) a synthetic
HDL-64 scan is used. Times are best / median CPU ms of this process over the repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import time_round_robin  # noqa: E402

from pcseg.engine.losses import instance_centres  # noqa: E402
from pcseg.io import LabelMap, read_labels  # noqa: E402
from pcseg.metrics import PanopticQuality, thing_classes  # noqa: E402
from pcseg.models.clustering import cluster_centres  # noqa: E402


def load_scan(scan, labels):
    if scan and Path(scan).is_file() and labels and Path(labels).is_file():
        raw, inst = read_labels(labels, return_instance=True)
        xyz = np.fromfile(scan, dtype="<f4").reshape(-1, 4)[:, :3]
        return f"{scan}", xyz, raw, inst
    from pcseg.synth import lidar_scan

    cloud = lidar_scan(seed=0)
    return "synthetic HDL-64 scan (seed 0)", cloud.xyz, cloud.labels, cloud.instance


def perturbed(raw, inst, rng):
    raw, inst = raw.copy(), inst.copy()
    ids, counts = np.unique(inst[inst > 0], return_counts=True)
    order = ids[np.argsort(-counts)]
    if len(order) >= 3:
        biggest = np.flatnonzero(inst == order[0])
        inst[biggest[: len(biggest) // 3]] = 999
        inst[inst == order[2]] = order[1]
    flip = rng.random(len(raw)) < 0.08
    raw[flip] = rng.choice(np.array([10, 11, 30, 40, 48, 50, 70, 72]), flip.sum())
    return raw, inst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scan", default=None)
    parser.add_argument("--labels", default=None)
    parser.add_argument("--official", default=None, help="path of semantic-kitti-api's auxiliary/eval_np.py")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    lm = LabelMap.builtin("semantickitti")
    name, xyz, raw, inst = load_scan(args.scan, args.labels)
    p_raw, p_inst = perturbed(raw, inst, np.random.default_rng(0))
    scan = (lm.to_train(p_raw), p_inst, lm.to_train(raw), inst)
    things = thing_classes(lm)
    cases = [("PanopticQuality.update", lambda: PanopticQuality(20, 0, 50, things).update(*scan))]
    if args.official:
        spec = importlib.util.spec_from_file_location("eval_np", args.official)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)

        def official():
            with contextlib.redirect_stdout(io.StringIO()):
                module.PanopticEval(20, None, [0], min_points=50).addBatch(*scan)

        cases.append(("official PanopticEval.addBatch", official))
    t_xyz = torch.from_numpy(np.ascontiguousarray(xyz, dtype=np.float32))
    labels = torch.from_numpy(scan[2])
    offsets = torch.tensor([len(xyz)])
    centres, mask = instance_centres(t_xyz, labels, torch.from_numpy(inst), offsets, things)
    votes = torch.where(mask[:, None], centres, t_xyz)
    cases.append((f"cluster_centres ({int(np.isin(scan[2], things).sum()):,} thing points, 0.4 m)",
                  lambda: cluster_centres(votes, labels, offsets, things, 0.4)))
    times = time_round_robin([fn for _, fn in cases], args.repeats, clock=time.process_time)
    print(f"{name}: {len(xyz):,} points, 1 torch thread")
    print(f"{'case':<58} {'best ms':>9} {'median ms':>10}")
    for (case, _), (best, median) in zip(cases, times):
        print(f"{case:<58} {best:9.1f} {median:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
