"""Open3D offscreen renders of the real SemanticKITTI scan, checked pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.viz.camera import preset
from pcseg.viz.render import Renderer, render, render_comparison
from pcseg.viz.splat import render_splat

pytest.importorskip("open3d")

W, H = 320, 200  # small: software Vulkan on a shared CPU


@pytest.fixture
def scan(kitti_scan):
    """(PointCloud, train-id labels, a prediction right on ~85% of points, LabelMap)."""
    from pcseg.io import LabelMap, read_labels, read_points

    bin_path, label_path = kitti_scan
    lm = LabelMap.builtin("semantickitti")
    cloud = read_points(bin_path)
    labels = lm.to_train(read_labels(label_path))
    rng = np.random.default_rng(0)
    pred = np.where(rng.random(len(labels)) < 0.85, labels, rng.integers(1, 20, len(labels)))
    return cloud, labels, pred, lm


def test_open3d_shows_label_colours_where_the_classes_are(scan):
    cloud, labels, _, lm = scan
    camera = preset(cloud.xyz, "perspective", W / H)
    colours = lm.colors[labels]
    image = Renderer(W, H, backend="open3d").render(cloud.xyz, colours, camera, point_size=1.0)
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    covered = (image != 255).any(-1)
    assert 0.1 < covered.mean() < 0.9
    # every covered pixel holds exactly one label colour (no lighting, tone mapping or blending)
    table = {tuple(c) for c in lm.colors.tolist()}
    assert all(tuple(p) in table for p in np.unique(image[covered], axis=0))
    # an independent z-buffer of the same camera: the nearest point of each pixel and its class
    reference = render_splat(cloud.xyz, colours, camera, W, H, 1.0)
    ref_covered = (reference != 255).any(-1)
    both = covered & ref_covered
    assert both.sum() > 0.98 * max(covered.sum(), ref_covered.sum())
    assert (image[both] == reference[both]).all(-1).mean() > 0.99
    # classes with many points are visible in their own colour
    counts = np.bincount(labels, minlength=lm.num_classes)
    for c in np.flatnonzero(counts > 2000):
        assert (image == lm.colors[c]).all(-1).sum() > 20, lm.class_names[c]


def test_render_with_legend_caption_bev(scan):
    cloud, labels, pred, lm = scan
    image = render(cloud, labels, pred, label_map=lm, mode="gt", view="bev", width=W, height=H, backend="open3d")
    # caption band on top (text, then a blank row); below it the W x H panel and the legend,
    # which may run taller than the panel (one column)
    ink_rows = (image != 255).any(-1).any(-1)
    caption_h = int(np.argmax(~ink_rows[np.argmax(ink_rows):])) + int(np.argmax(ink_rows))
    assert caption_h > 10 and image.shape[1] > W + 80 and image.shape[0] >= caption_h + H
    points_region = image[caption_h:caption_h + H, :W]
    assert (points_region != 255).any(-1).mean() > 0.05
    legend = image[caption_h:, W:]
    for c in np.unique(labels):
        assert (legend == lm.colors[c]).all(-1).sum() >= 50, f"no legend swatch for {lm.class_names[c]}"
    assert (image[:caption_h] != 255).any(-1).sum() > 100  # caption text drawn


def test_render_comparison_open3d(scan):
    cloud, labels, pred, lm = scan
    image, layout = render_comparison(cloud, labels, pred, label_map=lm, panel_width=W, panel_height=H,
                                      backend="open3d", return_layout=True)
    t, l, h, w = layout["errors"]
    errors = image[t:t + h, l:l + w]
    from pcseg.viz.colors import CORRECT_GREY, IGNORED_PALE, WRONG_RED

    colours = {tuple(c) for c in np.unique(errors.reshape(-1, 3), axis=0)}
    assert colours <= {(255, 255, 255), CORRECT_GREY, WRONG_RED, IGNORED_PALE}
    grey = (errors == CORRECT_GREY).all(-1).sum()
    red = (errors == WRONG_RED).all(-1).sum()
    assert 0.03 < red / (red + grey) < 0.4  # ~15% of points are wrong; pixels roughly follow


def test_renderers_of_several_sizes_can_come_and_go():
    # Open3D aborts the process when a renderer dies while another exists: run it in a child
    import subprocess
    import sys

    code = (
        "import gc, numpy as np\n"
        "from pcseg.viz.render import Renderer\n"
        "from pcseg.viz.camera import preset\n"
        "xyz = np.random.default_rng(0).random((500, 3)).astype(np.float32) * 10\n"
        "cols = np.full((500, 3), 200, np.uint8)\n"
        "cam = preset(xyz, 'perspective', 1.5)\n"
        "a = Renderer(96, 64, backend='open3d')\n"
        "b = Renderer(64, 48, backend='open3d')\n"
        "for r in (a, b, a):\n"
        "    img = r.render(xyz, cols, cam)\n"
        "    assert img.shape == (r.height, r.width, 3) and (img == 200).all(-1).any()\n"
        "del a, b; gc.collect()\n"
        "Renderer(80, 60, backend='open3d').render(xyz, cols, cam)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
