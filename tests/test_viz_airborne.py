"""Airborne tiles in the viewer: north up in BEV, the whole tile in view, ASPRS names by default."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.viz.camera import preset, project

W, H = 800, 500


def _tile(seed=0, n=4000, size=(300.0, 120.0)):
    rng = np.random.default_rng(seed)
    xyz = np.column_stack([rng.uniform(0, size[0], n), rng.uniform(0, size[1], n), rng.uniform(0, 25, n)])
    return xyz.astype(np.float32)


@pytest.mark.parametrize("view", ["bev", "perspective"])
def test_map_preset_keeps_the_whole_tile_in_view_and_fills_it(view):
    xyz = _tile()
    xyz[0] = (150.0, 60.0, 400.0)  # one bird far above: z is framed robustly, xy in full
    camera = preset(xyz, view, W / H, north_up=True)
    u, v, _, visible = project(xyz[1:], camera, W, H)
    assert visible.all()
    assert (u >= 0).all() and (u <= W).all() and (v >= 0).all() and (v <= H).all()
    # the tile fills the image along at least one axis (no half-empty frame)
    assert max((u.max() - u.min()) / W, (v.max() - v.min()) / H) > 0.85


def test_bev_is_north_up_and_east_right():
    xyz = _tile()
    camera = preset(xyz, "bev", W / H, north_up=True)
    probes = np.array([[150, 60, 10], [250, 60, 10], [150, 110, 10]], dtype=np.float64)  # centre, east, north
    u, v, _, _ = project(probes, camera, W, H)
    assert u[1] > u[0] + 50 and abs(v[1] - v[0]) < 1  # east -> right
    assert v[2] < v[0] - 50 and abs(u[2] - u[0]) < 1  # north -> up
    # the vehicle preset keeps its convention (+x up), so the two differ
    u2, v2, _, _ = project(probes, preset(xyz, "bev", W / H), W, H)
    assert v2[1] < v2[0] - 50


def test_perspective_map_view_looks_north():
    xyz = _tile()
    camera = preset(xyz, "perspective", W / H, north_up=True)
    u, v, depth, _ = project(np.array([[150, 0, 0], [150, 120, 0]], dtype=np.float64), camera, W, H)
    assert depth[1] > depth[0] and v[1] < v[0]  # the north edge is farther and higher in the image


def test_view_cli_uses_asprs_for_las_and_frames_it_north_up(tmp_path, monkeypatch):
    laspy = pytest.importorskip("laspy")
    import pcseg.cli.view as view
    from pcseg.cli import main
    from pcseg.io import read_points

    header = laspy.LasHeader(version="1.2", point_format=1)
    header.offsets, header.scales = [600000.0, 4200000.0, 0.0], [0.01] * 3
    las = laspy.LasData(header)
    xyz = _tile(1, 2000) + np.array([600000.0, 4200000.0, 300.0])
    las.x, las.y, las.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    las.classification = np.where(xyz[:, 2] > 310, 6, 2).astype(np.uint8)
    las.write(str(tmp_path / "tile.las"))
    seen = {}
    monkeypatch.setattr(view, "_render_scan", lambda scan, label_map, *a: seen.setdefault("map", label_map))
    assert main(["view", str(tmp_path / "tile.las"), "--png", str(tmp_path / "x.png")]) == 0
    assert seen["map"].name == "asprs"
    from pcseg.io import LabelMap
    from pcseg.viz import render

    cloud = read_points(tmp_path / "tile.las")
    lm = LabelMap.builtin("asprs")
    common = dict(label_map=lm, view="bev", width=160, height=100, backend="numpy", legend=False, caption=False)
    auto = render(cloud, **common)
    np.testing.assert_array_equal(auto, render(cloud, north_up=True, **common))
    assert not np.array_equal(auto, render(cloud, north_up=False, **common))
