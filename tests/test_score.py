"""``pcseg score`` end to end on label files in the SemanticKITTI layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pcseg.cli import main

REPO = Path(__file__).resolve().parents[1]


def learning_map_lut():
    spec = yaml.safe_load((REPO / "pcseg" / "data" / "label_maps" / "semantickitti.yaml").read_text())
    lut = np.zeros(max(spec["learning_map"]) + 1, dtype=np.int64)
    for raw, train in spec["learning_map"].items():
        lut[raw] = train
    return lut, sorted(spec["learning_map"])


def official_miou(pred_train, gt_train, C=20, ignore=(0,)):
    # the semantic-kitti-api formula, [pred, target] indexing, ignored target columns zeroed
    conf = np.zeros((C, C), dtype=np.int64)
    np.add.at(conf, (pred_train, gt_train), 1)
    conf[:, list(ignore)] = 0
    tp = np.diag(conf)
    union = conf.sum(axis=1) + conf.sum(axis=0) - tp + 1e-15
    include = [c for c in range(C) if c not in ignore]
    return (tp[include] / union[include]).mean()


def write_label(path: Path, raw: np.ndarray, instance: np.ndarray | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    inst = np.zeros_like(raw) if instance is None else instance
    (raw.astype(np.uint32) | (inst.astype(np.uint32) << 16)).tofile(path)


@pytest.fixture
def layout(tmp_path):
    """Two sequences x two scans of raw ids; predictions right on ~70% of points."""
    rng = np.random.default_rng(0)
    _, raw_ids = learning_map_lut()
    some = np.array([0, 10, 11, 40, 44, 48, 50, 70, 72, 80, 252])  # 252 = moving-car -> car
    gt_all, pred_all = [], []
    for seq in ("00", "08"):
        for scan in range(2):
            n = 500 + 100 * scan
            gt = rng.choice(some, n)
            pred = np.where(rng.random(n) < 0.7, gt, rng.choice(raw_ids, n))
            write_label(tmp_path / "gt" / "sequences" / seq / "labels" / f"{scan:06d}.label", gt, rng.integers(0, 9, n))
            write_label(tmp_path / "pred" / "sequences" / seq / "predictions" / f"{scan:06d}.label", pred)
            gt_all.append(gt)
            pred_all.append(pred)
    return tmp_path, np.concatenate(pred_all), np.concatenate(gt_all)


def test_score_layout_matches_official(layout, capsys):
    root, pred, gt = layout
    out = root / "report"
    assert main(["score", str(root / "pred"), str(root / "gt"), "--label-map", "semantickitti", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "car" in printed and "mIoU" in printed
    data = json.loads((out / "metrics.json").read_text())
    lut, _ = learning_map_lut()
    assert data["miou_absent_zero"] == pytest.approx(official_miou(lut[pred], lut[gt]), rel=1e-12)
    assert data["scans"] == 4 and data["per_scan"][0]["scan"] == "00/000000"
    assert data["points"] == int((lut[gt] != 0).sum())
    labeled = lut[gt] != 0
    assert data["accuracy"] == pytest.approx((lut[pred] == lut[gt])[labeled].mean())
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    assert (out / "class_iou.png").stat().st_size > 1000


def test_score_sequence_filter_and_two_files(layout, capsys):
    root, _, _ = layout
    out = root / "r08"
    assert main(["score", str(root / "pred"), str(root / "gt"), "--sequences", "08", "--out", str(out), "--no-plots"]) == 0
    data = json.loads((out / "metrics.json").read_text())
    assert [s["scan"] for s in data["per_scan"]] == ["08/000000", "08/000001"]
    assert not (out / "class_iou.png").exists()
    # the same single scan scored as two files
    pred = root / "pred/sequences/08/predictions/000001.label"
    gt = root / "gt/sequences/08/labels/000001.label"
    assert main(["score", str(pred), str(gt), "--out", str(root / "one"), "--no-plots"]) == 0
    one = json.loads((root / "one" / "metrics.json").read_text())
    assert one["miou"] == pytest.approx(data["per_scan"][1]["miou"])


def test_score_train_ids_npy(tmp_path):
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 20, 800)
    pred = np.where(rng.random(800) < 0.5, gt, rng.integers(0, 20, 800))
    np.save(tmp_path / "gt.npy", gt.astype(np.int32)[:, None])  # Open3D-ML's (N, 1) int32 layout
    np.save(tmp_path / "pred.npy", pred)
    rc = main(["score", str(tmp_path / "pred.npy"), str(tmp_path / "gt.npy"), "--pred-ids", "train",
               "--gt-ids", "train", "--out", str(tmp_path / "o"), "--no-plots"])
    assert rc == 0
    data = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert data["miou_absent_zero"] == pytest.approx(official_miou(pred, gt), rel=1e-12)


def test_score_bad_input(layout, tmp_path, capsys):
    root, _, _ = layout
    (root / "pred/sequences/08/predictions/000001.label").unlink()
    assert main(["score", str(root / "pred"), str(root / "gt"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "1 of 4 ground-truth scan(s)" in err and "08/000001" in err

    a, b = tmp_path / "a.label", tmp_path / "b.label"
    write_label(a, np.array([10, 10, 40]))
    write_label(b, np.array([10, 40]))
    assert main(["score", str(a), str(b), "--out", str(tmp_path / "y")]) == 2
    assert "3 labels" in capsys.readouterr().err

    write_label(b, np.array([10, 40, 123]))  # 123 is no SemanticKITTI raw id
    assert main(["score", str(a), str(b), "--out", str(tmp_path / "y")]) == 2
    assert "123" in capsys.readouterr().err

    assert main(["score", str(a), str(tmp_path / "missing.label")]) == 2
    assert "not found" in capsys.readouterr().err


def test_score_boundary_radius(layout, capsys):
    from scipy.spatial.distance import cdist

    root, _, _ = layout
    rng = np.random.default_rng(7)
    lut, _ = learning_map_lut()
    pred_all, gt_all = [], []
    for seq in ("00", "08"):
        for scan in range(2):
            gt_path = root / "gt" / "sequences" / seq / "labels" / f"{scan:06d}.label"
            pred_path = root / "pred" / "sequences" / seq / "predictions" / f"{scan:06d}.label"
            gt = lut[np.fromfile(gt_path, dtype=np.uint32) & 0xFFFF]
            pred = lut[np.fromfile(pred_path, dtype=np.uint32) & 0xFFFF]
            xyz = rng.random((len(gt), 3)).astype(np.float32) * 8
            (root / "gt" / "sequences" / seq / "velodyne").mkdir(exist_ok=True)
            np.concatenate([xyz, np.zeros((len(gt), 1), np.float32)], axis=1).tofile(
                root / "gt" / "sequences" / seq / "velodyne" / f"{scan:06d}.bin")
            # brute force: labeled points with a differently labeled (labeled) point within 0.5 m
            near = cdist(xyz, xyz) <= 0.5
            labeled = gt != 0
            boundary = labeled & (near & (gt[:, None] != gt[None, :]) & labeled[None, :]).any(axis=1)
            pred_all.append(pred[boundary])
            gt_all.append(gt[boundary])
    out = root / "b"
    assert main(["score", str(root / "pred"), str(root / "gt"), "--boundary-radius", "0.5", "--out", str(out),
                 "--no-plots"]) == 0
    assert "boundary (r = 0.5 m" in capsys.readouterr().out
    b = json.loads((out / "metrics.json").read_text())["boundary"]
    assert b["points"] == sum(len(g) for g in gt_all)
    assert b["miou_absent_zero"] == pytest.approx(official_miou(np.concatenate(pred_all), np.concatenate(gt_all)),
                                                  rel=1e-12)
    (root / "gt/sequences/08/velodyne/000001.bin").unlink()
    assert main(["score", str(root / "pred"), str(root / "gt"), "--boundary-radius", "0.5", "--out", str(out)]) == 2
    assert "000001.bin" in capsys.readouterr().err


def test_score_detects_predictions_holding_train_ids(tmp_path, capsys):
    """pcseg segment --format npy writes train ids; scoring them as raw ids must say so."""
    lut, _ = learning_map_lut()
    rng = np.random.default_rng(2)
    gt = rng.choice(np.array([10, 40, 44, 48, 50, 70, 72, 80]), 600)
    write_label(tmp_path / "gt.label", gt)
    np.save(tmp_path / "pred.npy", lut[gt])  # perfect predictions, as train ids (some, e.g. 9, are no raw id)
    assert main(["score", str(tmp_path / "pred.npy"), str(tmp_path / "gt.label"), "--out", str(tmp_path / "o"),
                 "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pred.npy" in err and "look like train ids" in err and "--pred-ids train" in err
    assert main(["score", str(tmp_path / "pred.npy"), str(tmp_path / "gt.label"), "--pred-ids", "train",
                 "--out", str(tmp_path / "o"), "--no-plots"]) == 0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["accuracy"] == 1.0
    # ids that are valid raw ids too cannot be told apart for sure: a warning, not an error
    only_small = np.where(lut[gt] % 2 == 0, 0, 1)  # train ids 0 and 1: both valid raw ids (unlabeled, outlier)
    np.save(tmp_path / "small.npy", only_small)
    capsys.readouterr()
    assert main(["score", str(tmp_path / "small.npy"), str(tmp_path / "gt.label"), "--out", str(tmp_path / "o2"),
                 "--no-plots"]) == 0
    assert "pcseg score: warning: every predicted id is below 20" in capsys.readouterr().err
