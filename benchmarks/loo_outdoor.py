"""Leave-one-sequence-out validation of the outdoor recipe (configs/outdoor_minkunet.yaml).

    python benchmarks/loo_outdoor.py train [--fold NAME ...]   # train the folds (background jobs)
    python benchmarks/loo_outdoor.py score [--fold NAME ...]   # per-class IoU of each fold's last.pt

The six real frames of ../shared/data come from three recordings; each fold holds one recording
out, trains the shipped recipe on the rest (same number of real draws per epoch, same synthetic
scans, same seeds) and scores its ``last.pt`` on the held-out frames, which nothing in training
or model selection ever saw. Consecutive frames of one recording stay together, so no fold
scores a frame whose neighbour it trained on.

mIoU is the mean over the classes present in the held-out ground truth (the issue's measure);
the official SemanticKITTI mIoU (all 19 classes, absent = 0) is printed beside it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "outdoor_minkunet.yaml"
DATA = REPO.parent / "shared" / "data"
NPY = "semantickitti-npy"
KITTI08 = "semantickitti/sequences/08/velodyne/000000.bin"
RECORDINGS = {
    "kitti01": [f"{NPY}/kitti_01_points_00000{i}.npy" for i in range(3)],
    "demo": [f"{NPY}/demo_points_000700.npy", f"{NPY}/demo_points_000750.npy"],
    "kitti08": [KITTI08],
}
REAL_DRAWS_PER_EPOCH = 24  # the shipped recipe: 6 frames x repeat 4


def fold_overrides(fold: str) -> list[str]:
    train = [f for name, files in RECORDINGS.items() if name != fold for f in files]
    repeat = max(1, round(REAL_DRAWS_PER_EPOCH / len(train)))
    return [f"dataset.train_split=[{', '.join(train)}]", f"dataset.repeat={repeat}",
            f"train.out_dir=runs/outdoor_loo_{fold}"]


def train(folds, threads):
    procs = []
    for fold in folds:
        cmd = [sys.executable, "-m", "pcseg", "train", str(CONFIG), "--set", "train.progress=false",
               "--set", f"train.threads={threads}"]
        for item in fold_overrides(fold):
            cmd += ["--set", item]
        log = open(REPO / "runs" / f"outdoor_loo_{fold}.log", "w")
        procs.append(subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
        print("started", fold, " ".join(cmd[3:]))
    return [p.wait() for p in procs]


def load_frame(rel: str):
    from pcseg.io import LabelMap, read_labels, read_points

    path = DATA / rel
    if path.suffix == ".bin":
        cloud = read_points(path)
        raw = read_labels(path.parent.parent / "labels" / (path.stem + ".label"))
        return cloud, LabelMap.builtin("semantickitti").to_train(raw)
    from pcseg.io import PointCloud

    xyz = np.load(path).astype(np.float32)
    labels = np.load(str(path).replace("_points_", "_labels_")).reshape(-1).astype(np.int64)
    return PointCloud(xyz=xyz, source=str(path)), labels


def score(folds, checkpoint_name):
    from pcseg.engine.segmenter import Segmenter
    from pcseg.metrics import ConfusionMatrix

    rows = {}
    for fold in folds:
        ckpt = REPO / "runs" / f"outdoor_loo_{fold}" / checkpoint_name
        if not ckpt.is_file():
            print(f"{fold}: no {ckpt}")
            continue
        seg = Segmenter.from_checkpoint(ckpt, device="cpu")
        lm = seg.label_map
        cm = ConfusionMatrix(lm.num_classes, lm.ignore_index, lm.class_names)
        for rel in RECORDINGS[fold]:
            cloud, target = load_frame(rel)
            cm.update(seg(cloud), target)
        rows[fold] = cm
        print(f"\n== fold {fold}: held out {', '.join(RECORDINGS[fold])}")
        print(cm.table())
        print(f"mIoU over present classes {100 * present_miou(cm):.1f}   official mIoU {100 * cm.miou(absent='zero'):.1f}")
    if rows:
        print("\nfold      present-class mIoU   official mIoU")
        for fold, cm in rows.items():
            print(f"{fold:<9} {100 * present_miou(cm):18.1f} {100 * cm.miou(absent='zero'):15.1f}")
        print(f"{'mean':<9} {np.mean([100 * present_miou(c) for c in rows.values()]):18.1f} "
              f"{np.mean([100 * c.miou(absent='zero') for c in rows.values()]):15.1f}")


def present_miou(cm) -> float:
    """Mean IoU over the evaluated classes that occur in the ground truth."""
    present = cm.evaluated & (cm.matrix.sum(axis=1) > 0)
    return float(np.mean(cm.iou()[present])) if present.any() else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["train", "score"])
    parser.add_argument("--fold", nargs="+", default=list(RECORDINGS), choices=list(RECORDINGS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", default="last.pt", help="file in each fold's run folder")
    args = parser.parse_args()
    if args.action == "train":
        (REPO / "runs").mkdir(exist_ok=True)
        sys.exit(max(train(args.fold, args.threads)))
    score(args.fold, args.checkpoint)


if __name__ == "__main__":
    main()
