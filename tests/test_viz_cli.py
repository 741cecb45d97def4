"""``pcseg view --png`` end to end: single files, sequence folders, bad input."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from pcseg.cli import main


def _write_label(path, raw):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.asarray(raw, dtype=np.uint32).tofile(path)


def test_view_png_compare_file(kitti_scan, tmp_path):
    bin_path, label_path = kitti_scan
    raw = np.fromfile(label_path, dtype=np.uint32) & 0xFFFF
    pred = raw.copy()
    pred[raw == 40] = 48  # every road point predicted as sidewalk
    _write_label(tmp_path / "pred.label", pred)
    out = tmp_path / "view.png"
    rc = main(["view", str(bin_path), "--labels", str(label_path), "--pred", str(tmp_path / "pred.label"),
               "--png", str(out), "--width", "200", "--height", "150", "--backend", "numpy"])
    assert rc == 0
    image = np.asarray(Image.open(out))[..., :3]
    assert image.shape[0] > 150 and image.shape[1] > 3 * 200  # three panels and a legend
    from pcseg.viz.colors import WRONG_RED

    assert (image == WRONG_RED).all(-1).sum() > 100  # the wrong road shows red in the errors panel


def test_view_png_sequence_folder(kitti_scan, tmp_path):
    bin_path, label_path = kitti_scan
    seq = tmp_path / "08"
    for i in range(2):
        (seq / "velodyne").mkdir(parents=True, exist_ok=True)
        shutil.copy(bin_path, seq / "velodyne" / f"00000{i}.bin")
        _write_label(seq / "labels" / f"00000{i}.label", np.fromfile(label_path, dtype=np.uint32))
    rc = main(["view", str(seq), "--png", str(tmp_path / "out"), "--mode", "gt", "--view", "bev",
               "--width", "160", "--height", "120", "--backend", "numpy"])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000000.png", "000001.png"]
    one = tmp_path / "one.png"
    assert main(["view", str(seq), "--png", str(one), "--scan", "1", "--mode", "height", "--width", "160",
                 "--height", "120", "--backend", "numpy"]) == 0
    assert one.stat().st_size > 1000
    folder = tmp_path / "existing"
    folder.mkdir()
    assert main(["view", str(seq / "velodyne" / "000001.bin"), "--png", str(folder), "--width", "160",
                 "--height", "120", "--backend", "numpy"]) == 0
    assert [p.name for p in folder.iterdir()] == ["000001.png"]  # a folder as OUT gets <scan>.png


def test_view_bad_input(kitti_scan, tmp_path, capsys):
    bin_path, label_path = kitti_scan
    assert main(["view", str(tmp_path / "nope.bin"), "--png", str(tmp_path / "a.png")]) == 2
    assert "not found" in capsys.readouterr().err
    _write_label(tmp_path / "short.label", np.zeros(10))
    assert main(["view", str(bin_path), "--labels", str(tmp_path / "short.label"), "--png", str(tmp_path / "a.png"),
                 "--backend", "numpy"]) == 2
    assert "10 labels" in capsys.readouterr().err
    assert main(["view", str(bin_path), "--mode", "errors", "--png", str(tmp_path / "a.png"), "--backend", "numpy"]) == 2
    assert "errors" in capsys.readouterr().err
    assert main(["view", str(bin_path), "--background", "pink", "--png", str(tmp_path / "a.png")]) == 2
    assert "--background" in capsys.readouterr().err


def test_view_window_fits_the_screen_unless_a_size_is_given(tmp_path, monkeypatch):
    """Without --png the window is sized to the screen (width/height None) unless --width/--height
    say otherwise; --png keeps its 960x600 default."""
    import pcseg.viz.window as window

    calls = []
    monkeypatch.setattr(window, "show", lambda **kwargs: calls.append(kwargs))
    xyz = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    scan = tmp_path / "000000.bin"
    xyz.tofile(scan)
    assert main(["view", str(scan)]) == 0
    assert main(["view", str(scan), "--width", "1000"]) == 0
    assert main(["view", str(scan), "--width", "300", "--height", "200"]) == 0  # raised to the smallest window
    assert [(c["width"], c["height"]) for c in calls] == [(None, None), (1000, None), (640, 480)]
    out = tmp_path / "one.png"
    assert main(["view", str(scan), "--png", str(out), "--mode", "height", "--backend", "numpy"]) == 0
    from pcseg.viz.compose import CAPTION_HEIGHT

    image = np.asarray(Image.open(out))
    assert image.shape[0] == 600 + CAPTION_HEIGHT and image.shape[1] >= 960
