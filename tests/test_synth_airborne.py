"""Synthetic airborne tiles and the terrain-relative features the airborne model reads."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from pcseg.datasets.features import build_features, context_margin
from pcseg.datasets.terrain import terrain_heights
from pcseg.io import LabelMap, PointCloud
from pcseg.synth.airborne import airborne_tile


def _slope_with_box(seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 80, (60000, 2))
    ground = 0.15 * xy[:, 0] - 0.05 * xy[:, 1] + 100
    box = (np.abs(xy[:, 0] - 40) < 6) & (np.abs(xy[:, 1] - 40) < 5)
    z = ground + np.where(box, 7.0, 0.0)
    return np.column_stack([xy, z]), ground, box


def test_heights_above_a_sloped_plane_with_a_building():
    xyz, ground, box = _slope_with_box()
    hag, rel = terrain_heights(xyz)
    true = xyz[:, 2] - ground
    # the grid keeps each cell's lowest point: the opening's minimum and maximum filters each err
    # by up to the plane's rise across one cell ...
    tol = 2 * (0.15 + 0.05) * 1.0 + 1e-6
    inner = np.all((xyz[:, :2] > 25) & (xyz[:, :2] < 55), axis=1)  # a window from the edges
    assert np.abs(hag - true)[inner & ~box].max() <= tol
    # roof points: the same inside the roof; up to 0.6 m off in the cells along the roof's edge
    assert np.median(np.abs(hag[box] - 7.0)) <= tol and np.abs(hag[box] - 7.0).max() <= 0.6
    # ... and, near the edges (the filters see one side only), the rise across half a window
    assert np.abs(hag - true).max() <= 0.15 * 12.5 + 0.05 * 12.5
    # 3 m local window: the roof's interior is near 0, its edge cells see the ground below
    assert np.median(rel[box]) < 1.0 and rel[box].max() > 6.0


def test_features_do_not_depend_on_the_tile_position():
    xyz, _, _ = _slope_with_box(1)
    moved = xyz + np.array([512345.0, 5403210.0, 300.0])
    names = ["height_above_ground", "relative_height", "ones"]
    a = build_features(xyz.astype(np.float32), PointCloud(xyz=xyz), names)
    local = (moved - np.floor(moved.min(0))).astype(np.float32)
    b = build_features(local, PointCloud(xyz=local), names)
    np.testing.assert_allclose(a, b, atol=2e-3)
    assert context_margin(names) >= 12.5 and context_margin(["xyz"]) == 2.0


def test_airborne_tile_is_deterministic_georeferenced_and_layered():
    a, b = airborne_tile(7, size=60, density=10), airborne_tile(7, size=60, density=10)
    np.testing.assert_array_equal(a.xyz, b.xyz)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.offset[0] > 1e5 and a.offset[1] > 1e6  # UTM-like world position
    assert set(np.unique(a.labels)) <= {1, 2, 3, 4, 5, 6, 7, 9, 14, 15}
    # pulse density: last returns about `density` per m^2 (water drops some, canopy adds returns)
    assert 6 <= len(a) / 60 ** 2 <= 25
    lm = LabelMap.builtin("asprs")
    assert (lm.to_train(a.labels) >= 0).all()


def test_canopy_gives_several_returns_and_ground_below():
    tiles = [airborne_tile(s, size=70, density=15) for s in range(3)]
    veg_counts, under = 0, []
    for t in tiles:
        veg = np.isin(t.labels, (4, 5))
        ground = t.labels == 2
        if veg.sum() < 50 or ground.sum() < 50:
            continue
        veg_counts += veg.sum()
        tree = cKDTree(t.xyz[ground, :2])
        dist, _ = tree.query(t.xyz[veg, :2])
        under.append(np.mean(dist < 0.5))  # ground seen through the crowns
        # vegetation classes follow the height above the ground points below them
        hag, _ = terrain_heights(t.xyz)
        high = t.labels == 5
        assert np.median(hag[high]) > 5
    assert veg_counts > 0 and np.mean(under) > 0.5


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_dataset_sensor_airborne(seed):
    from pcseg.datasets.synthetic import SyntheticDataset

    ds = SyntheticDataset(1, seed, LabelMap.builtin("asprs"), ["height_above_ground", "relative_height", "ones"],
                          sensor="airborne")
    cloud = ds.load_cloud(0)
    assert cloud.labels.max() < 14 and len(cloud) > 1000
