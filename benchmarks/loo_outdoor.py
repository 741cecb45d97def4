"""Leave-one-sequence-out validation of the outdoor recipes (configs/outdoor_minkunet_*.yaml, realtime_*).

    pcseg train configs/outdoor_minkunet_pretrain.yaml     # synthetic only: one run serves every fold
    pcseg train configs/outdoor_minkunet_pretrain2.yaml
    pcseg train configs/outdoor_minkunet_pretrain3.yaml
    python benchmarks/loo_outdoor.py train                 # each fold fine-tunes it on the other recordings
    python benchmarks/loo_outdoor.py score [--fold NAME ...]   # per-class IoU of each fold's last.pt
    python benchmarks/loo_outdoor.py train --recipe realtime   # the real-time model's one stage
    python benchmarks/loo_outdoor.py score --recipe realtime

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
sys.path.insert(0, str(REPO))  # this checkout's pcseg, not another installed copy
# recipe -> the config of its real-frame stage, the one each fold trains
RECIPES = {
    "realtime": REPO / "configs" / "realtime_fastvoxelnet.yaml",
    # fine-tuning from the synthetic pretraining (configs/outdoor_minkunet_pretrain*.yaml), which
    # saw no real frame, so every fold starts from the same runs/outdoor_minkunet_pretrain3/last.pt
    "outdoor": REPO / "configs" / "outdoor_minkunet_finetune.yaml",
}
DATA = REPO.parent / "shared" / "data"
NPY = "semantickitti-npy"
KITTI08 = "semantickitti/sequences/08/velodyne/000000.bin"
RECORDINGS = {
    "kitti01": [f"{NPY}/kitti_01_points_00000{i}.npy" for i in range(3)],
    "demo": [f"{NPY}/demo_points_000700.npy", f"{NPY}/demo_points_000750.npy"],
    "kitti08": [KITTI08],
}


def run_dir(fold: str, tag: str, recipe: str = "outdoor") -> Path:
    """runs/<recipe>_loo<tag>_<fold>"""
    return REPO / "runs" / f"{recipe}_loo{tag}_{fold}"


def fold_overrides(fold: str, tag: str = "", recipe: str = "outdoor") -> list[str]:
    """The shipped config turned into a fold: the held-out recording leaves the training split and
    the real frames left are repeated to keep the config's real draws per epoch."""
    from pcseg.engine.config import load_config

    shipped = load_config(RECIPES[recipe])["dataset"]
    real_draws = shipped["repeat"] * sum(len(files) for files in RECORDINGS.values())
    train = [f for name, files in RECORDINGS.items() if name != fold for f in files]
    return [f"dataset.train_split=[{', '.join(train)}]", f"dataset.repeat={max(1, round(real_draws / len(train)))}",
            f"train.out_dir={run_dir(fold, tag, recipe).relative_to(REPO)}"]


def train(folds, threads, tag="", extra=(), recipe="outdoor"):
    procs = []
    for fold in folds:
        cmd = [sys.executable, "-m", "pcseg", "train", str(RECIPES[recipe]), "--set", "train.progress=false",
               "--set", f"train.threads={threads}"]
        for item in [*extra, *fold_overrides(fold, tag, recipe)]:
            cmd += ["--set", item]
        log = open(run_dir(fold, tag, recipe).with_suffix(".log"), "w")
        procs.append(subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
        print("started", fold, " ".join(cmd[3:]))
    return [p.wait() for p in procs]


def load_frame(rel: str):
    from pcseg.io import LabelMap, read_labels, read_points
    from pcseg.io.labels import kitti_label_path

    path = DATA / rel
    if path.suffix == ".bin":
        cloud = read_points(path)
        raw = read_labels(kitti_label_path(path))
        return cloud, LabelMap.builtin("semantickitti").to_train(raw)
    from pcseg.io import PointCloud

    xyz = np.load(path).astype(np.float32)
    labels = np.load(str(path).replace("_points_", "_labels_")).reshape(-1).astype(np.int64)
    return PointCloud(xyz=xyz, source=str(path)), labels


def recording_confusion(seg, recording: str):
    """ConfusionMatrix of Segmenter ``seg`` over the frames of ``recording`` (a RECORDINGS key)."""
    from pcseg.metrics import ConfusionMatrix

    lm = seg.label_map
    cm = ConfusionMatrix(lm.num_classes, lm.ignore_index, lm.class_names)
    for rel in RECORDINGS[recording]:
        cloud, target = load_frame(rel)
        cm.update(seg(cloud), target)
    return cm


def score(folds, checkpoint_name, tag="", tta=0, recipe="outdoor", recenter=None):
    from pcseg.engine.segmenter import Segmenter

    rows = {}
    for fold in folds:
        ckpt = run_dir(fold, tag, recipe) / checkpoint_name
        if not ckpt.is_file():
            print(f"{fold}: no {ckpt}")
            continue
        options = {} if recenter is None else {"recenter": recenter}  # None: as the checkpoint says
        seg = Segmenter.from_checkpoint(ckpt, device="cpu", tta=tta, **options)
        rows[fold] = cm = recording_confusion(seg, fold)
        print(f"\n== fold {fold}: held out {', '.join(RECORDINGS[fold])}")
        print(cm.table())
        print(f"mIoU over present classes {100 * cm.miou(absent='target'):.1f}   official mIoU {100 * cm.miou(absent='zero'):.1f}")
    if rows:
        print("\nfold      present-class mIoU   official mIoU")
        for fold, cm in rows.items():
            print(f"{fold:<9} {100 * cm.miou(absent='target'):18.1f} {100 * cm.miou(absent='zero'):15.1f}")
        print(f"{'mean':<9} {np.mean([100 * c.miou(absent='target') for c in rows.values()]):18.1f} "
              f"{np.mean([100 * c.miou(absent='zero') for c in rows.values()]):15.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["train", "score"])
    parser.add_argument("--fold", nargs="+", default=list(RECORDINGS), choices=list(RECORDINGS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", default="last.pt", help="file in each fold's run folder")
    parser.add_argument("--recipe", default="outdoor", choices=sorted(RECIPES),
                        help="recipe to validate (outdoor: the default model; realtime: FastVoxelNet)")
    parser.add_argument("--tag", default="", help="suffix of the run folders (runs/<RECIPE>_loo<TAG>_<fold>)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override for every fold (a recipe variant)")
    parser.add_argument("--tta", type=int, default=0, help="score with Segmenter(tta=N)")
    parser.add_argument("--recenter", action="store_true",
                        help="score with Segmenter(recenter=True) even if the checkpoint does not ask for it")
    args = parser.parse_args()
    if args.action == "train":
        (REPO / "runs").mkdir(exist_ok=True)
        sys.exit(max(train(args.fold, args.threads, args.tag, args.set, args.recipe)))
    score(args.fold, args.checkpoint, args.tag, args.tta, args.recipe, recenter=True if args.recenter else None)


if __name__ == "__main__":
    main()
