"""``pcseg view --html``: one self-contained interactive page, checked in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from pcseg.cli import main
from pcseg.io import LabelMap
from pcseg.viz.colors import WRONG_RED
from pcseg.viz.html import page_data, write_html

KITTI = LabelMap.builtin("semantickitti")
ROAD, CAR = 9, 1  # train ids


def _scene(n=124_000, seed=0):
    """A flat road disc with car boxes: (xyz float32 (n, 3), truth, prediction) train ids."""
    rng = np.random.default_rng(seed)
    xyz = np.zeros((n, 3), dtype=np.float32)
    xyz[:, :2] = rng.uniform(-20, 20, (n, 2))
    car = (np.abs(xyz[:, 0] - 5) < 2) | (np.abs(xyz[:, 1] + 6) < 2)
    xyz[car, 2] = rng.uniform(0, 1.5, car.sum())
    truth = np.where(car, CAR, ROAD).astype(np.int64)
    pred = truth.copy()
    pred[xyz[:, 0] < -10] = CAR  # a wrong band
    return xyz, truth, pred


def test_page_data_scores_like_a_hand_count():
    xyz, truth, pred = _scene(5000)
    data = page_data(xyz, truth, pred, label_map=KITTI)
    for c in (ROAD, CAR):
        inter = np.sum((truth == c) & (pred == c))
        union = np.sum((truth == c) | (pred == c))
        assert data["iou"][c] == pytest.approx(inter / union, abs=1e-4)
    assert data["miou"] == pytest.approx(np.mean([data["iou"][ROAD], data["iou"][CAR]]), abs=1e-4)
    assert data["n"] == 5000 and data["names"][CAR] == "car"


def test_page_data_rejects_bad_ids():
    from pcseg.errors import PcsegValueError

    xyz, truth, _ = _scene(100)
    with pytest.raises(PcsegValueError, match="pred"):
        page_data(xyz, truth, truth[:50], label_map=KITTI)
    with pytest.raises(PcsegValueError, match="labels"):
        page_data(xyz, truth + 100, None, label_map=KITTI)


def test_cli_writes_a_self_contained_page(tmp_path):
    xyz, truth, pred = _scene(2000)
    points = np.concatenate([xyz, np.zeros((len(xyz), 1), np.float32)], 1)
    points.astype("<f4").tofile(tmp_path / "scan.bin")
    KITTI.to_raw(truth).astype("<u4").tofile(tmp_path / "scan.label")
    KITTI.to_raw(pred).astype("<u4").tofile(tmp_path / "pred.label")
    out = tmp_path / "view.html"
    assert main(["view", str(tmp_path / "scan.bin"), "--labels", str(tmp_path / "scan.label"),
                 "--pred", str(tmp_path / "pred.label"), "--html", str(out)]) == 0
    text = out.read_text()
    assert not re.search(r"<script[^>]+src=", text), "the page must not load scripts from elsewhere"
    data = json.loads(re.search(r'<script id="pcseg-data" type="application/json">(.+?)</script>', text, re.S)
                      .group(1).replace("<\\/", "</"))
    assert data["n"] == 2000 and data["miou"] == pytest.approx(page_data(xyz, truth, pred, label_map=KITTI)["miou"])
    assert "Plotly" in text and "scatter3d" in text


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless browser (apt-get install -y chromium)")


def _browse(page, *args):
    base = [_chromium(), "--headless", "--no-sandbox", "--use-gl=swiftshader", "--enable-unsafe-swiftshader",
            "--window-size=1200,800", "--virtual-time-budget=30000", "--hide-scrollbars"]
    return subprocess.run(base + list(args) + [page], capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_page_loads_in_a_real_browser_and_shows_the_cloud(tmp_path):
    from PIL import Image

    xyz, truth, pred = _scene(124_000)
    page = write_html(tmp_path / "view.html", xyz, truth, pred, label_map=KITTI, title="toy street")
    url = page.resolve().as_uri()

    dom = _browse(url, "--dump-dom").stdout
    assert 'data-status="ready"' in dom, "the plot never finished drawing"
    assert "data-errors" not in dom.split("<head>", 1)[0], re.findall(r'data-errors="[^"]*"', dom)
    assert "mIoU" in dom and "car" in dom  # legend with IoU

    shot = tmp_path / "errors.png"
    _browse(f"{url}#mode=errors", f"--screenshot={shot}")
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    plot = image[:, : image.shape[1] - 260]  # left of the legend panel
    red = (np.abs(plot - np.array(WRONG_RED)).sum(-1) < 40).sum()
    drawn = (plot.sum(-1) < 3 * 245).sum()
    assert drawn > 0.02 * plot.shape[0] * plot.shape[1], "the cloud is not on the screenshot"
    assert red > 200, "the wrong band is not red in errors mode"


def test_show_inline_displays_the_page_in_a_notebook(monkeypatch):
    """In Jupyter, pcseg.viz.show hands IPython an iframe holding the same page."""
    import sys
    import types

    import pcseg.viz

    shown = []
    display_module = types.ModuleType("IPython.display")
    display_module.display = shown.append
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    xyz, truth, pred = _scene(3000)
    assert pcseg.viz.show(xyz, truth, pred, label_map=KITTI, inline=True) is None
    (view,) = shown
    frame = view._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and "scatter3d" in frame and "&lt;script" in frame
    assert not pcseg.viz._in_notebook()  # a plain interpreter is not a notebook
