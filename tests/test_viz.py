"""Viewer building blocks without Open3D: colours, cameras, the numpy splat, composition."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pcseg.errors import PcsegValueError
from pcseg.viz import colors as C
from pcseg.viz.camera import Camera, preset, project
from pcseg.viz.compose import legend_panel, save_png
from pcseg.viz.render import render, render_comparison
from pcseg.viz.splat import render_splat

WHITE = (255, 255, 255)


def test_import_does_not_load_open3d():
    code = "import sys, pcseg.viz, pcseg.cli.view\nassert 'open3d' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_error_and_label_colours():
    pred = np.array([1, 2, 2, 0])
    target = np.array([1, 1, 0, 0])
    out = C.error_colors(pred, target, ignore_index=[0])
    assert [tuple(c) for c in out] == [C.CORRECT_GREY, C.WRONG_RED, C.IGNORED_PALE, C.IGNORED_PALE]
    table = np.array([[0, 0, 0], [10, 20, 30], [200, 100, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(C.label_colors(np.array([2, 1]), table), [[200, 100, 0], [10, 20, 30]])
    with pytest.raises(PcsegValueError, match="outside"):
        C.label_colors(np.array([3]), table)
    palette = C.distinct_colors(30)
    assert len({tuple(c) for c in palette}) == 30


def test_ortho_projection_by_hand():
    # looking straight down from z = 10 with +x up in the image: a 10 m tall view in 100 px
    cam = Camera(eye=(0, 0, 10), center=(0, 0, 0), up=(1, 0, 0), projection="ortho", half_height=5.0, far=100)
    u, v, depth, visible = project(np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 2.0]]), cam, 100, 100)
    np.testing.assert_allclose(u, [50, 0, 50])  # +y (left of the sensor) is on the image's left
    np.testing.assert_allclose(v, [0, 50, 50])  # +x (forward) is up
    np.testing.assert_allclose(depth, [10, 10, 8])
    assert visible.all()


def test_perspective_projection_by_hand():
    # 90 degree vertical field of view: focal length = half the image height
    cam = Camera(eye=(0, 0, 0), center=(1, 0, 0), up=(0, 0, 1), fov_deg=90.0)
    u, v, depth, visible = project(np.array([[4.0, 0, 2.0], [2.0, -1.0, 0], [-1.0, 0, 0]]), cam, 200, 100)
    np.testing.assert_allclose(u[:2], [100, 125])  # -y is right: 1/2 * 50 px
    np.testing.assert_allclose(v[:2], [25, 50])  # z = 2 at depth 4: half of 50 px up
    assert visible.tolist() == [True, True, False]  # behind the camera


def test_splat_places_classes_where_they_are():
    # class 1 ahead of the sensor, class 2 behind it, class 3 to its left
    rng = np.random.default_rng(0)
    ahead = rng.normal([8, 0, 0], 0.5, (300, 3))
    behind = rng.normal([-8, 0, 0], 0.5, (300, 3))
    left = rng.normal([0, 8, 0], 0.5, (300, 3))
    xyz = np.concatenate([ahead, behind, left])
    labels = np.repeat([1, 2, 3], 300)
    table = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255], [0, 160, 0]], dtype=np.uint8)
    cam = preset(xyz, "bev", 1.0)
    image = render_splat(xyz, table[labels], cam, 120, 120, 2.0, WHITE)

    def where(color):
        ys, xs = np.nonzero((image == color).all(-1))
        return ys.mean(), xs.mean(), len(ys)

    (y1, x1, n1), (y2, x2, n2), (y3, x3, n3) = (where(table[c]) for c in (1, 2, 3))
    assert min(n1, n2, n3) > 20
    assert y1 < 40 and y2 > 80 and abs(x1 - x2) < 10  # ahead is up, behind is down, same column
    assert x3 < x1 - 30 and y1 + 20 < y3 < y2 - 20  # left is left, between them
    # the nearest point wins a pixel: a red point above a blue one hides it from above
    stack = np.array([[0.0, 0, 0], [0.0, 0, 1.0], [1.0, 1.0, 0]])
    cam2 = Camera(eye=(0, 0, 10), center=(0, 0, 0), up=(1, 0, 0), projection="ortho", half_height=2.0)
    img = render_splat(stack, table[[2, 1, 3]], cam2, 40, 40, 1.0, WHITE)
    assert tuple(img[20, 20]) == (255, 0, 0)


def test_legend_panel_has_exact_swatches():
    entries = [((245, 150, 100), "car"), (None, "errors"), ((0, 175, 0), "vegetation  81.2")]
    panel = legend_panel(entries, 120, "IoU %")
    for rgb, _ in (entries[0], entries[2]):
        assert (panel == rgb).all(-1).sum() >= 100  # a 10x10 swatch interior of that exact colour
    assert (panel != 255).any(-1).mean() > 0.02  # text was drawn


def _scene():
    rng = np.random.default_rng(1)
    xyz = np.concatenate([rng.normal([6, 0, 0], 1, (400, 3)), rng.normal([-6, 2, 0], 1, (400, 3))])
    labels = np.repeat([1, 2], 400)
    pred = labels.copy()
    pred[:100] = 2  # a quarter of class 1 wrong
    return xyz.astype(np.float32), labels, pred


def test_render_numpy_backend_with_legend_and_caption():
    xyz, labels, pred = _scene()
    image = render(xyz, labels, pred, mode="gt", width=160, height=120, backend="numpy")
    assert image.dtype == np.uint8 and image.shape[0] > 120 and image.shape[1] > 160
    bare = render(xyz, labels, pred, mode="gt", width=160, height=120, backend="numpy", legend=False, caption=None)
    assert bare.shape == (120, 160, 3)
    np.testing.assert_array_equal(image[-120:, :160], bare)  # caption on top, legend on the right
    table = C.distinct_colors(3)
    legend = image[:, 160:]
    for c in (1, 2):
        assert (legend == table[c]).all(-1).sum() >= 100


def test_render_comparison_layout():
    xyz, labels, pred = _scene()
    image, layout = render_comparison(xyz, labels, pred, panel_width=160, panel_height=120, backend="numpy",
                                      return_layout=True)
    table = C.distinct_colors(3)
    crops = {k: image[t:t + h, l:l + w] for k, (t, l, h, w) in layout.items()}
    assert all(crops[k].shape == (120, 160, 3) for k in ("gt", "pred", "errors"))
    gt_alone = render(xyz, labels, mode="gt", width=160, height=120, backend="numpy", legend=False, caption=None)
    np.testing.assert_array_equal(crops["gt"], gt_alone)
    errors = crops["errors"].reshape(-1, 3)
    colours = {tuple(c) for c in np.unique(errors, axis=0)}
    assert colours <= {WHITE, C.CORRECT_GREY, C.WRONG_RED}
    assert C.WRONG_RED in colours and C.CORRECT_GREY in colours
    # legend holds both class colours and the error colours
    for rgb in (table[1], table[2], C.WRONG_RED, C.CORRECT_GREY):
        assert (crops["legend"] == rgb).all(-1).sum() >= 100
    # pred panel: class 2's colour also where class 1 was wrongly predicted, so more of it
    assert (crops["pred"] == table[2]).all(-1).sum() > (crops["gt"] == table[2]).all(-1).sum()


def test_fallback_when_open3d_cannot_render(monkeypatch):
    import pcseg.viz.offscreen as offscreen

    class Broken:
        def __init__(self, *a, **k):
            raise RuntimeError("no Vulkan device")

    monkeypatch.setattr(offscreen, "OffscreenScene", Broken)
    xyz, labels, pred = _scene()
    with pytest.warns(RuntimeWarning, match="numpy point renderer"):
        image = render(xyz, labels, pred, width=100, height=80, legend=False, caption=None)
    np.testing.assert_array_equal(
        image, render(xyz, labels, pred, width=100, height=80, legend=False, caption=None, backend="numpy"))
    with pytest.raises(PcsegValueError, match="unavailable"):
        render(xyz, labels, pred, width=100, height=80, backend="open3d")


def test_bad_input(tmp_path):
    xyz, labels, pred = _scene()
    with pytest.raises(PcsegValueError, match="rows"):
        render(xyz, labels[:-1], backend="numpy")
    with pytest.raises(PcsegValueError, match="integer"):
        render(xyz, labels.astype(float), backend="numpy")
    with pytest.raises(PcsegValueError, match="errors"):
        render(xyz, labels, mode="errors", backend="numpy")
    with pytest.raises(PcsegValueError, match="view"):
        render(xyz, view="side", backend="numpy")
    with pytest.raises(PcsegValueError, match="empty"):
        render(np.zeros((0, 3)), backend="numpy")
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(save_png(image, tmp_path / "a.png"))), image)


def test_legend_is_one_column_and_grows_instead_of_wrapping():
    from pcseg.viz.compose import ROW_HEIGHT

    colours = [(10 * i, 200 - 5 * i, 40) for i in range(20)]
    entries = [(c, f"class {i}") for i, c in enumerate(colours)] + [(None, "errors"), ((230, 25, 25), "wrong")]
    panel = legend_panel(entries, 120, "IoU %")  # far too short for 22 rows
    assert panel.shape[0] >= len(entries) * ROW_HEIGHT
    spots = [np.argwhere((panel == c).all(-1)) for c in colours + [(230, 25, 25)]]
    lefts = {int(s[:, 1].min()) for s in spots}
    tops = [int(s[:, 0].min()) for s in spots]
    assert len(lefts) == 1, "every swatch in the same column"
    assert tops == sorted(tops), "rows top to bottom in order, the errors entry after its heading"
