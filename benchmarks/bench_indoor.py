"""The indoor model's card: mIoU on held-out generated rooms (with and without colour), the shared
S3DIS sample as a smoke test, and CPU seconds per 80k-point room.

    python benchmarks/bench_indoor.py [--rooms 6] [--checkpoint PATH] [--repeats 3] [--threads 1 2]

Held-out rooms: :func:`pcseg.synth.scene_scan.scene_scan` with seeds from ``HELD_OUT_SEED``
(training uses seeds 0.., validation 100000..), at the generator's default 2 cm density. mIoU is
the mean IoU over the classes present in the ground truth. "no colour" drops the rgb field, so the
Segmenter feeds the colour-dropout grey. S3DIS: the 100-point sample of Area_1_office_2 in
../shared/data (skipped when absent), its classes mapped to ScanNet's where they correspond
(wall, floor, window, door, table, chair, sofa, bookcase -> bookshelf; others left out).
Timing: one held-out room subsampled to 80,000 points, median of ``--repeats`` calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's pcseg, not an installed one
S3DIS = REPO.parent / "shared" / "data" / "s3dis"
HELD_OUT_SEED = 300_000
# S3DIS class index (mmdetection3d order) -> ScanNet benchmark class name
S3DIS_TO_SCANNET = {1: "floor", 2: "wall", 5: "window", 6: "door", 7: "table", 8: "chair", 9: "sofa", 10: "bookshelf"}


def present_miou(pred: np.ndarray, target: np.ndarray, label_map) -> tuple[float, dict]:
    """(mean IoU over the classes present in ``target``, {class: IoU} of those classes); both
    int arrays (N,) of train ids, ignored classes left out (``ConfusionMatrix.miou(absent="target")``)."""
    from pcseg.metrics import ConfusionMatrix

    cm = ConfusionMatrix(label_map.num_classes, label_map.ignore_index).update(pred, target)
    present = np.flatnonzero((cm.matrix.sum(axis=1) > 0) & cm.evaluated)
    ious = cm.iou()
    return cm.miou(absent="target"), {int(c): float(ious[c]) for c in present}


def s3dis_sample():
    """(PointCloud with rgb, ScanNet train ids (-1 = not mapped)) of the shared sample, or None."""
    from pcseg.io import LabelMap, PointCloud

    points = S3DIS / "Area_1_office_2_points.bin"
    if not points.is_file():
        return None
    data = np.fromfile(points, dtype=np.float32).reshape(-1, 6)
    semantic = np.fromfile(S3DIS / "Area_1_office_2_semantic.bin", dtype=np.int64)
    names = LabelMap.builtin("scannet").class_names
    target = np.array([names.index(S3DIS_TO_SCANNET[s]) if s in S3DIS_TO_SCANNET else -1 for s in semantic])
    xyz = data[:, :3] - data[:, :3].min(axis=0)
    return PointCloud(xyz=xyz, rgb=np.clip(data[:, 3:6] / 255.0, 0, 1)), target


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=6, help="held-out generated rooms")
    parser.add_argument("--checkpoint", default=None, help="default: the bundled indoor model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    from pcseg.engine.segmenter import Segmenter
    from pcseg.pretrained import checkpoint_path
    from pcseg.synth.scene_scan import scene_scan

    path = args.checkpoint or checkpoint_path("indoor")
    seg = Segmenter.from_checkpoint(path, threads=1)
    lm = seg.label_map
    print(f"checkpoint {path} ({os.path.getsize(path) / 1e6:.1f} MB); load average {os.getloadavg()}")
    rooms = [scene_scan(HELD_OUT_SEED + i) for i in range(args.rooms)]
    for colour in (True, False):
        preds, targets = [], []
        for room in rooms:
            cloud = room if colour else type(room)(xyz=room.xyz, labels=room.labels)
            preds.append(seg(cloud))
            targets.append(lm.to_train(room.labels))
        pred, target = np.concatenate(preds), np.concatenate(targets)
        valid = ~np.isin(target, lm.ignore_index)
        miou, ious = present_miou(pred[valid], target[valid], lm)
        acc = float(np.mean(pred[valid] == target[valid]))
        print(f"held-out rooms x{args.rooms} ({'xyz+rgb' if colour else 'no colour'}): mIoU(present) {100 * miou:.1f}, "
              f"OA {100 * acc:.1f}, {len(pred)} points")
        print("    per class: " + ", ".join(f"{lm.class_names[c]} {100 * v:.0f}" for c, v in ious.items()))
    sample = s3dis_sample()
    if sample is not None:
        cloud, target = sample
        pred = seg(cloud)
        mapped = target >= 0
        miou, ious = present_miou(pred[mapped], target[mapped], lm)
        print(f"S3DIS Area_1_office_2 sample ({mapped.sum()} of {len(target)} points in mapped classes): "
              f"mIoU(present, mapped) {100 * miou:.1f}, OA {100 * np.mean(pred[mapped] == target[mapped]):.1f}")
        print("    per class: " + ", ".join(f"{lm.class_names[c]} {100 * v:.0f}" for c, v in ious.items()))
    room = rooms[0]
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(room), size=min(80_000, len(room)), replace=False))
    cloud = type(room)(xyz=room.xyz[pick], rgb=room.rgb[pick])
    for threads in args.threads:
        timed = Segmenter.from_checkpoint(path, threads=threads)
        timed(cloud)  # warm-up
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            timed(cloud)
            seconds.append(time.perf_counter() - start)
        print(f"{len(cloud)}-point room, {threads} thread(s): median {np.median(seconds):.2f} s "
              f"(min {min(seconds):.2f}, max {max(seconds):.2f}); load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
