"""The interactive window as a person sees it: opened under Xvfb on a 1400x900 screen, it fits
the screen, its panel rows never overlap, the legend (colour, class, IoU) and the mIoU are shown
from the start, and a capture of the screen (``xwd``) shows the class colours in the legend's
swatches. Then it switches modes, steps scans, hides a class and closes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent('''
    import json, shutil, subprocess, sys, time
    from pathlib import Path
    import numpy as np
    import open3d as o3d
    from pcseg.io import LabelMap
    from pcseg.viz.render import scene_data
    from pcseg.viz.window import ViewerWindow
    from pcseg.viz.window_layout import screen_size
    from pcseg.viz.xwd import read_xwd

    out = Path(sys.argv[1])
    lm = LabelMap.builtin("semantickitti")
    rng = np.random.default_rng(0)
    # 100 points per train id 0..19, each class a blob on a 5 x 4 grid in front of the sensor
    # (the camera frames the dense middle of the cloud: the nearest blobs fall below the view)
    labels = np.repeat(np.arange(20), 100)
    centres = np.c_[8 + 6 * (labels // 4), -9 + 6 * (labels % 4), np.zeros(2000)]
    xyz = centres + rng.normal(0, 0.8, (2000, 3))
    pred = labels.copy()
    pred[100:125] = 2            # 25 car points predicted as bicycle
    pred[1900:] = 18             # traffic-sign (19) never predicted: all 100 as pole
    scenes = [scene_data(xyz, labels, pred, lm), scene_data(xyz * 0.5, labels, labels, lm)]
    app = o3d.visualization.gui.Application.instance
    app.initialize()
    probe = app.create_window("probe", 64, 64)  # starts the renderer (aborts where it cannot)
    app.run_one_tick()
    probe.close()
    app.run_one_tick()
    (out / "initialised").touch()  # Open3D's GUI runs here: a failure from now on is the viewer's
    win = ViewerWindow(scenes, lm)  # default size: fitted to the screen

    def tick(n=10):
        for _ in range(n):
            app.run_one_tick()
            time.sleep(0.005)

    def rect(r):
        return [r.x, r.y, r.width, r.height]

    # wait (in ticks, not time) until the window is on the screen, then capture it
    shot = None
    for _ in range(600):
        tick(10)
        if shutil.which("xwd") is None:
            break
        subprocess.run(f"xwd -root -silent > {out / 'screen.xwd'}", shell=True, check=True)
        image = read_xwd(out / "screen.xwd")
        f = win.window.os_frame
        if (image[f.y:f.y + f.height, f.x:f.x + f.width].sum(-1) > 0).mean() > 0.9:
            shot = image
            break
    report = {"screen": screen_size(), "os_frame": rect(win.window.os_frame),
              "content": rect(win.window.content_rect), "panel": rect(win.panel.frame),
              "scene": rect(win.view.frame), "frames": win.panel_frames(), "mode": win.mode,
              "score": win.score_label.text, "title": win.window.title,
              "legend": [[list(rgb), text, value] for rgb, text, value in win.legend_rows()],
              "rows": [[text, [rect(c.frame) for c in cells]] for text, cells in win.legend_widgets],
              "enabled": [cells[0].enabled for _, cells in win.legend_widgets]}
    if shot is not None:
        f = win.window.os_frame
        report["swatch_pixels"] = []
        for text, cells in win.legend_widgets:
            s = cells[1].frame
            cy, cx = f.y + s.y + s.height // 2, f.x + s.x + s.width // 2
            report["swatch_pixels"].append(shot[cy, cx].tolist())
        v = win.view.frame
        scene_px = shot[f.y + v.y:f.y + v.y + v.height, f.x + v.x:f.x + v.x + v.width].reshape(-1, 3)
        report["scene_colours"] = np.unique(scene_px, axis=0).tolist()
    win.set_mode("errors"); tick()
    report["errors"] = [[text, value] for _, text, value in win.legend_rows()]
    win.set_mode("gt"); tick()
    check, name = win.legend_widgets[1][1][0], win.groups[1][0]  # row 1 and train id 1: car
    win._toggle(check, name); tick()
    report["hidden"] = [name, check.checked, win.view.scene.geometry_is_visible(name)]
    win.step(+1); tick()
    report["second"] = {"index": win.index, "title": win.window.title, "score": win.score_label.text,
                        "mode": win.mode}
    win.close()
    tick(5)
    small = ViewerWindow(scenes, lm, width=800, height=560)  # the smallest default size
    tick(30)
    report["small"] = {"panel": rect(small.panel.frame), "frames": small.panel_frames()}
    small.close()
    tick(5)
    (out / "report.json").write_text(json.dumps(report))
''')


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    pytest.importorskip("open3d")
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed")
    tmp = tmp_path_factory.mktemp("window")
    script = tmp / "window_script.py"
    script.write_text(SCRIPT)
    import pcseg

    # the script imports the pcseg this test runs against, not another one on the path
    root = str(Path(pcseg.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", sys.executable, str(script), str(tmp)],
                          capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode != 0 and not (tmp / "initialised").exists():
        pytest.skip(f"Open3D's GUI cannot start under Xvfb here: {proc.stderr[-500:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp / "report.json").read_text())


def test_window_fits_the_screen(report):
    from pcseg.viz.window_layout import window_size

    assert report["screen"] == [1400, 900]
    x, y, w, h = report["os_frame"]
    assert (report["content"][2], report["content"][3]) == window_size((1400, 900)) == (1288, 765)
    assert x >= 0 and y >= 0 and x + w <= 1400 and y + h <= 900
    # the 3D view and the panel share the window side by side
    assert not _overlap(report["scene"], report["panel"])
    assert report["scene"][2] + report["panel"][2] == report["content"][2]


def test_panel_rows_never_overlap_and_stay_inside_the_panel(report):
    frames = [f for _, f in report["frames"] if f[2] > 0 and f[3] > 0]
    assert len(frames) > 80  # header, buttons, slider and 4 cells for each of the 20 legend rows
    for i, a in enumerate(frames):
        for b in frames[i + 1:]:
            assert not _overlap(a, b), (a, b)
    px, py, pw, ph = report["panel"]
    for f in frames:
        assert px <= f[0] and f[0] + f[2] <= px + pw and py <= f[1]
    # at the default size all 20 legend rows are on screen without scrolling, each row level
    assert len(report["rows"]) == 20
    for text, cells in report["rows"]:
        assert len({c[1] for c in cells}) == 1, (text, cells)
        assert all(c[1] + c[3] <= py + ph for c in cells), text
    tops = [cells[0][1] for _, cells in report["rows"]]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)


def test_a_small_window_scrolls_its_panel_instead_of_overlapping(report):
    px, py, pw, ph = report["small"]["panel"]
    frames = [f for _, f in report["small"]["frames"] if f[2] > 0 and f[3] > 0]
    for i, a in enumerate(frames):
        assert px <= a[0] and a[0] + a[2] <= px + pw, a  # nothing sticks out sideways
        for b in frames[i + 1:]:
            assert not _overlap(a, b), (a, b)
    assert max(f[1] + f[3] for f in frames) > py + ph  # the legend continues below: scrolled to


def test_legend_and_miou_are_shown_from_the_start(report):
    from pcseg.io import LabelMap

    lm = LabelMap.builtin("semantickitti")
    # car: 75 of 100 right, none else predicted car -> 75.0; bicycle: 100 right + 25 wrong -> 80.0
    expected = [[list(map(int, lm.colors[0])), "unlabeled", "-"], [list(map(int, lm.colors[1])), "car", "75.0"],
                [list(map(int, lm.colors[2])), "bicycle", "80.0"]]
    expected += [[list(map(int, lm.colors[c])), lm.class_names[c], "100.0"] for c in range(3, 18)]
    # pole: its 100 points and the 100 traffic-sign points predicted pole -> 50.0; traffic-sign is
    # never predicted (0.0) but keeps its row: the mIoU averages it
    expected += [[list(map(int, lm.colors[18])), "pole", "50.0"], [list(map(int, lm.colors[19])), "traffic-sign", "0.0"]]
    assert report["mode"] == "pred"
    assert report["legend"] == expected
    # mIoU (0.75 + 0.8 + 15 + 0.5 + 0) / 19; OA 1775 / 1900; mAcc (0.75 + 1 + 15 + 1 + 0) / 19
    assert report["score"] == "mIoU 89.74%   OA 93.42%   mAcc 93.42%"
    assert "mIoU 89.74%" in report["title"]
    assert report["enabled"] == [True] * 19 + [False]  # no traffic-sign points to hide in pred colours


def test_the_screen_shows_the_class_colours(report):
    if "swatch_pixels" not in report:
        pytest.skip("xwd (apt x11-apps) is not installed: no screen capture")
    assert report["swatch_pixels"] == [colour for colour, _, _ in report["legend"]]
    shown = {tuple(c) for c in report["scene_colours"]}
    assert (255, 255, 255) in shown  # the background
    legend = {tuple(c) for c, _, _ in report["legend"]}
    assert len(legend & shown) >= 12  # the blobs in view, in their exact class colours
    assert shown <= legend | {(255, 255, 255)}


def test_modes_steps_and_hiding(report):
    assert report["errors"] == [["correct", "1,775"], ["wrong", "125"], ["not scored", "100"]]
    name, checked, visible = report["hidden"]
    assert name == "car [1]" and checked is False and visible is False
    second = report["second"]
    assert second["index"] == 1 and "(2/2)" in second["title"] and second["mode"] == "gt"
    assert second["score"].startswith("mIoU 100.00%")
