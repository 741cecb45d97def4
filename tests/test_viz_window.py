"""The interactive O3DVisualizer window opens, switches modes, steps scans and closes under Xvfb."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent('''
    import json, sys, time
    from pathlib import Path
    import numpy as np
    import open3d as o3d
    from pcseg.viz.render import scene_data
    from pcseg.viz.window import ViewerWindow

    out = Path(sys.argv[1])
    rng = np.random.default_rng(0)
    xyz = np.concatenate([rng.normal([6, 0, 0], 1, (400, 3)), rng.normal([-6, 2, 0], 1, (400, 3))])
    labels = np.repeat([1, 2], 400)
    pred = labels.copy()
    pred[:100] = 2
    scenes = [scene_data(xyz, labels, pred), scene_data(xyz * 0.5, labels, labels)]
    app = o3d.visualization.gui.Application.instance
    app.initialize()
    win = ViewerWindow(scenes, None, width=640, height=480, point_size=4)
    app.add_window(win.vis)

    def tick(n=10):
        for _ in range(n):
            app.run_one_tick()

    tick(20)
    report = {"first": {"names": list(win.geometry_names), "title": win.vis.title, "mode": win.mode}}
    win.set_mode("errors"); tick()
    report["errors"] = {"names": list(win.geometry_names)}
    win.step(+1); tick()
    report["second"] = {"names": list(win.geometry_names), "title": win.vis.title, "index": win.index}
    win.show_legend(); tick()
    report["legend"] = [text for _, text in win.legend_rows()]
    win.vis.close_dialog(); tick()
    win.set_mode("gt"); tick()
    win.vis.export_current_image(str(out / "window.png"))
    for _ in range(400):
        win.vis.post_redraw()
        app.run_one_tick()
        if (out / "window.png").exists():
            break
        time.sleep(0.01)
    tick(5)
    win.vis.close()
    tick(5)
    (out / "report.json").write_text(json.dumps(report))
''')


def test_window_under_xvfb(tmp_path):
    pytest.importorskip("open3d")
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed")
    script = tmp_path / "window_script.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, str(script), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    # scan 0: prediction colours by default; class 1 has IoU 300/400, class 2 has 400/500
    assert report["first"]["mode"] == "pred"
    assert report["first"]["names"] == ["class 1  75.0", "class 2  80.0"]
    assert "mIoU 77.50%" in report["first"]["title"]
    assert report["errors"]["names"] == ["correct (700 points)", "wrong (100 points)"]
    assert report["second"]["index"] == 1 and "(2/2)" in report["second"]["title"]
    assert "mIoU 100.00%" in report["second"]["title"]
    assert report["legend"] == ["correct", "wrong", "not scored"]  # the legend dialog of errors mode
    # what the window showed: white background and the two class colours, exactly
    from PIL import Image

    from pcseg.viz.colors import distinct_colors

    image = np.asarray(Image.open(tmp_path / "window.png"))[..., :3]
    colours = {tuple(c) for c in np.unique(image.reshape(-1, 3), axis=0)}
    table = distinct_colors(3)
    assert {tuple(table[1]), tuple(table[2])} <= colours
    assert colours <= {(255, 255, 255), tuple(table[1]), tuple(table[2])}
