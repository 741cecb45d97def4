"""Capture the interactive viewer as a person sees it, for docs/viz_window.png.

Run under a display or Xvfb (needs ``xwd``, apt package x11-apps), from the repository root:

    python -m pcseg segment --checkpoint pcseg/pretrained/outdoor_minkunet.pt --out /tmp/pred \\
        ../shared/data/semantickitti/sequences/08/velodyne/000000.bin
    xvfb-run -a -s "-screen 0 1400x900x24" python docs/make_window_screenshot.py \\
        ../shared/data/semantickitti/sequences/08/velodyne/000000.bin \\
        ../shared/data/semantickitti/sequences/08/labels/000000.label /tmp/pred/000000.label docs/viz_window.png

It opens the same window as ``pcseg view SCAN --labels LABELS --pred PRED`` (default size,
fitted to the screen), waits until it is on the screen, captures the screen with ``xwd``,
crops the window and writes it as a PNG.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scan")
    parser.add_argument("labels")
    parser.add_argument("pred")
    parser.add_argument("out")
    parser.add_argument("--mode", default=None, help="colour mode to show (default: prediction)")
    args = parser.parse_args()

    import open3d as o3d
    from PIL import Image

    from pcseg.io import LabelMap
    from pcseg.viz.scans import Scan
    from pcseg.viz.window import ViewerWindow
    from pcseg.viz.xwd import read_xwd

    scan = Scan(Path(args.scan).stem, Path(args.scan), Path(args.labels), Path(args.pred))
    app = o3d.visualization.gui.Application.instance
    app.initialize()
    win = ViewerWindow([scan], LabelMap.builtin("semantickitti"), mode=args.mode)
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "screen.xwd"
        for _ in range(600):  # until the window is drawn (Filament's first frames take a few seconds)
            for _ in range(10):
                app.run_one_tick()
                time.sleep(0.005)
            subprocess.run(f"xwd -root -silent > {dump}", shell=True, check=True)
            screen = read_xwd(dump)
            f = win.window.os_frame
            window = screen[f.y:f.y + f.height, f.x:f.x + f.width]
            if (window.sum(-1) > 0).mean() > 0.9:
                break
        else:
            raise SystemExit("the window never appeared on the screen")
        for _ in range(20):  # a few more frames: the panel is complete
            app.run_one_tick()
            time.sleep(0.005)
        subprocess.run(f"xwd -root -silent > {dump}", shell=True, check=True)
        screen = read_xwd(dump)
    window = np.ascontiguousarray(screen[f.y:f.y + f.height, f.x:f.x + f.width])
    Image.fromarray(window).save(args.out, optimize=True)
    print(f"wrote {args.out}: {window.shape[1]}x{window.shape[0]}, {Path(args.out).stat().st_size // 1024} KiB")
    win.close()
    for _ in range(5):
        app.run_one_tick()


if __name__ == "__main__":
    main()
