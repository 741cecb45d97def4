"""``pcseg demo``: the README's main job, end to end on this CPU."""

import json

import pytest

from pcseg.cli import main


@pytest.mark.parametrize("model", ["outdoor", "realtime", "minkunet", "pointnet2"])
def test_demo_on_synthetic_scans(model, tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--scans", "1", "--model", model, "--no-view"]) == 0
    out = capsys.readouterr().out
    assert "mIoU" in out and "time per scan" in out and "road" in out
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["model"] == model and len(report["scans"]) == 1
    assert 0.2 < report["miou"] <= 1.0  # a trained model on a held-out scan (see test_pretrained)
    pngs = {p.name for p in tmp_path.glob("*.png")}
    assert {"confusion_matrix.png", "class_iou.png", f"{report['scans'][0]}_comparison.png"} <= pngs
    # the IoU bars wear the classes' colours, as `pcseg score`'s do (road: SemanticKITTI magenta)
    import numpy as np
    from PIL import Image

    from pcseg.io import LabelMap

    road = LabelMap.builtin("semantickitti").colors[9]
    bars = np.asarray(Image.open(tmp_path / "class_iou.png").convert("RGB")).astype(int)
    assert (np.abs(bars - road).sum(-1) <= 6).sum() > 200


def test_demo_on_a_real_scan_finds_its_labels(kitti_scan, tmp_path, capsys):
    velodyne, _ = kitti_scan
    assert main(["demo", "--out", str(tmp_path), "--input", str(velodyne), "--no-view"]) == 0
    out = capsys.readouterr().out
    assert "123,389 points" in out and "mIoU" in out  # labels found beside the scan, so it is scored
    assert (tmp_path / "000000_comparison.png").is_file()


def test_demo_rejects_bad_input(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--input", str(tmp_path / "missing.bin"), "--no-view"]) == 2
    assert "missing.bin" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), "--scans", "0", "--no-view"]) == 2
