"""The bundled models' model card: mIoU on held-out synthetic scans and on the real scan, time per scan.

    python benchmarks/bench_pretrained.py [--scans 4] [--device cpu]

Synthetic validation: scans from seeds the training never saw (``pcseg.demo.HELD_OUT_SEED``).
Real: the SemanticKITTI scan in ../shared/data (123,389 points, skipped when absent): for the
synthetic-only models the domain gap to a real sensor, stated as measured; the ``outdoor`` model
trained on that scan, so its row there is a training figure (its held-out figures come from
``benchmarks/loo_outdoor.py``). Per-class IoU of the real scan is printed under each model. mIoU excludes classes
absent from both ground truth and prediction; the official SemanticKITTI convention (absent = 0)
is printed beside it. Prints a table; the numbers go into the README's model card.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "semantickitti" / "sequences" / "08"


def evaluate(seg, clouds_and_targets, repeats=1):
    """(confusion matrix, median seconds of ``seg(cloud)`` over every scan and repeat)."""
    from pcseg.metrics import ConfusionMatrix

    lm = seg.label_map
    cm = ConfusionMatrix(lm.num_classes, lm.ignore_index, lm.class_names)
    seconds = []
    for cloud, target in clouds_and_targets:
        for _ in range(repeats):
            start = time.perf_counter()
            pred = seg(cloud)
            seconds.append(time.perf_counter() - start)
        cm.update(pred, target)
    return cm, float(np.median(seconds))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=4, help="held-out synthetic scans")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=["outdoor", "minkunet", "pointnet2"])
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per scan (the median is printed)")
    parser.add_argument("--threads", default=None, help="Segmenter threads: a count, or auto (default)")
    args = parser.parse_args()

    from pcseg.demo import HELD_OUT_SEED
    from pcseg.engine.segmenter import Segmenter
    from pcseg.io import read_labels, read_points
    from pcseg.pretrained import checkpoint_path
    from pcseg.synth import lidar_scan

    synthetic = [lidar_scan(HELD_OUT_SEED + i) for i in range(args.scans)]
    real = None
    if (REAL / "velodyne" / "000000.bin").is_file():
        real = read_points(REAL / "velodyne" / "000000.bin"), read_labels(REAL / "labels" / "000000.label")

    print(f"{'model':<10} {'data':<28} {'mIoU':>6} {'mIoU(abs=0)':>11} {'OA':>6} {'s/scan':>7}")
    for name in args.models:
        seg = Segmenter.from_checkpoint(checkpoint_path(name), device=args.device, threads=args.threads)
        lm = seg.label_map
        rows = [(f"synthetic x{args.scans} (held out)", [(c, lm.to_train(c.labels)) for c in synthetic])]
        if real is not None:
            rows.append(("real SemanticKITTI 08/000000", [(real[0], lm.to_train(real[1]))]))
        for label, data in rows:
            cm, sec = evaluate(seg, data, args.repeats)
            print(f"{name:<10} {label:<28} {100 * cm.miou():6.1f} {100 * cm.miou(absent='zero'):11.1f} "
                  f"{100 * cm.accuracy():6.1f} {sec:7.2f}")
            if label.startswith("real"):
                present = cm.evaluated & (cm.matrix.sum(axis=1) > 0)
                print("    per class: " + ", ".join(f"{n} {100 * v:.0f}" for n, v, p in
                                                   zip(lm.class_names, cm.iou(), present) if p))


if __name__ == "__main__":
    main()
