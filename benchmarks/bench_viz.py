"""Speed of headless renders of the real 123k-point SemanticKITTI scan (issue 9: "a few seconds").

Run: python benchmarks/bench_viz.py [--repeats 3]
Needs ../shared/data; Open3D rows are skipped when open3d cannot render here.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SCAN = Path(__file__).resolve().parents[2] / "shared/data/semantickitti/sequences/08"


def timed(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (SCAN / "velodyne/000000.bin").exists():
        sys.exit(f"needs the real scan under {SCAN}")
    from pcseg.io import LabelMap, read_labels, read_points
    from pcseg.viz import render, render_comparison
    from pcseg.viz.camera import preset
    from pcseg.viz.render import Renderer

    lm = LabelMap.builtin("semantickitti")
    cloud = read_points(SCAN / "velodyne/000000.bin")
    labels = lm.to_train(read_labels(SCAN / "labels/000000.label"))
    rng = np.random.default_rng(0)
    pred = np.where(rng.random(len(labels)) < 0.85, labels, rng.integers(1, 20, len(labels)))
    colors = lm.colors[labels]
    camera = preset(cloud.xyz, "perspective", 1024 / 640)

    rows = []

    def case(name, fn, repeats=args.repeats):
        best, median = timed(fn, repeats)
        rows.append((name, best, median))

    backends = ["numpy"]
    try:
        # the first Open3D renderer of a process starts Filament: timed once, on its own
        start = time.perf_counter()
        Renderer(1024, 640, backend="open3d").render(cloud.xyz, colors, camera)
        first = time.perf_counter() - start
        rows.append(("open3d: first render in the process (imports open3d, starts Filament)", first, first))
        backends.insert(0, "open3d")
    except Exception as exc:  # noqa: BLE001 - report and go on with numpy
        print(f"open3d offscreen unavailable: {exc}")
    for backend in backends:
        warm = Renderer(1024, 640, backend=backend)
        case(f"{backend}: later renders, 1024x640, points only", lambda r=warm: r.render(cloud.xyz, colors, camera))
        case(f"{backend}: render() 1024x640 + legend + caption",
             lambda b=backend: render(cloud, labels, pred, label_map=lm, mode="gt", width=1024, height=640, backend=b))
        case(f"{backend}: render_comparison 3 x 480x360",
             lambda b=backend: render_comparison(cloud, labels, pred, label_map=lm, backend=b))
    out = Path("/tmp/pcseg_bench_view.png")
    cmd = [sys.executable, "-m", "pcseg", "view", str(SCAN / "velodyne/000000.bin"), "--labels",
           str(SCAN / "labels/000000.label"), "--png", str(out), "--width", "1024", "--height", "640"]
    case("pcseg view --png 1024x640 (new process, auto backend)",
         lambda: subprocess.run(cmd, check=True, capture_output=True), repeats=max(1, args.repeats - 1))

    print(f"Viewer benchmark: {len(cloud.xyz):,}-point SemanticKITTI scan, seconds")
    width = max(len(r[0]) for r in rows)
    print(f"{'case'.ljust(width)}  {'best s':>7}  {'median s':>8}")
    for name, best, median in rows:
        print(f"{name.ljust(width)}  {best:7.2f}  {median:8.2f}")


if __name__ == "__main__":
    main()
