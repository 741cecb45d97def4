"""The airborne model's newer features against hand-computed cases: the slope-limited ground
(roofs of any width), local surface shape (roughness, normal_z), feet LAS tiles read in metres by
folder datasets, synthetic halls wider than the ground window; and, on the real LAS tiles, that
the features separate what the files' own classes say they should."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.datasets.features import build_features, context_margin
from pcseg.datasets.local_shape import ROUGHNESS_CAP, local_shape
from pcseg.datasets.terrain import GROUND_WINDOW, SLOPE_LIMIT, SLOPE_REACH, slope_ground, terrain_heights
from pcseg.io import PointCloud


def _grid_points(extent, spacing=0.5, seed=0):
    rng = np.random.default_rng(seed)
    g = np.arange(0, extent, spacing) + spacing / 2
    xy = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    return xy + rng.uniform(-0.1, 0.1, xy.shape)


def test_slope_ground_follows_terrain_gentler_than_its_limit():
    xy = _grid_points(80)
    z = 0.15 * xy[:, 0] - 0.1 * xy[:, 1] + 300.0  # 18% steepest slope < the 20% limit
    h = slope_ground(np.column_stack([xy, z]))
    # each 1 m cell keeps its lowest point: a point sits at most the plane's rise over a cell
    # (0.25 m along the diagonal) above it
    assert h.min() >= -1e-4 and h.max() <= (0.15 + 0.1) * 1.0 + 1e-3


def test_a_roof_wider_than_the_opening_window_is_above_slope_ground():
    xy = _grid_points(160)
    z = np.full(len(xy), 100.0)
    half = 35.0                                      # a 70 m hall, wider than the 25 m window
    d_edge = half - np.abs(xy - 80.0).max(axis=1)    # metres from the roof edge (inside > 0)
    roof = d_edge > 0
    z[roof] += 12.0
    xyz = np.column_stack([xy, z])
    h = slope_ground(xyz)
    # hand computation: the envelope under a roof point is the ground plus the slope limit times
    # its distance to the roof edge (the nearest ground, straight across), at most the roof itself;
    # grid cells shift that distance by up to 1.5 m
    expect = 12.0 - np.minimum(12.0, SLOPE_LIMIT * d_edge[roof])
    assert np.abs(h[roof] - expect).max() <= SLOPE_LIMIT * 1.5 + 1e-3
    assert np.median(h[roof]) > 6.0 and np.abs(h[~roof]).max() < 1e-3
    # the opening of terrain_heights keeps such a roof as ground in its middle
    hag, _ = terrain_heights(xyz)
    centre = roof & (d_edge > GROUND_WINDOW)
    assert np.abs(hag[centre]).max() < 0.5


def test_a_gap_between_roof_and_ground_is_not_filled_with_the_roof():
    # sample_c-like: ground strip, 15 m with no points, then a roof 25 m up
    xy = _grid_points(90)
    strip, roof = xy[:, 0] < 10, xy[:, 0] >= 25
    xy = xy[strip | roof]
    z = np.where(xy[:, 0] < 10, 50.0, 75.0)
    h = slope_ground(np.column_stack([xy, z]))
    on_roof = xy[:, 0] >= 25
    d = xy[on_roof, 0] - 10.0                        # distance to the last ground column
    # within the reach the ground's cone rises across the gap; beyond it the envelope is the roof
    # itself (the documented limit); a cell or two either side of the reach is left out
    expect = np.where(d < SLOPE_REACH, 25.0 - SLOPE_LIMIT * d, 0.0)
    clear = np.abs(d - SLOPE_REACH) > 2.0
    assert np.abs(h[on_roof] - expect)[clear].max() <= SLOPE_LIMIT * 1.5 + 1e-3
    assert context_margin(["height_above_slope_ground"]) >= SLOPE_REACH


def test_local_shape_of_planes_walls_canopy_and_isolated_points():
    xy = _grid_points(20, spacing=0.3)
    plane = np.column_stack([xy, 0.3 * xy[:, 0] + 0.1 * xy[:, 1]])
    rough, nz = local_shape(plane)
    assert np.median(rough) < 0.03
    # |n_z| of z = 0.3x + 0.1y is 1 / sqrt(1 + 0.3^2 + 0.1^2)
    assert np.median(nz) == pytest.approx(1 / np.sqrt(1.1), abs=0.02)
    wall = np.column_stack([np.full(len(xy), 5.0), xy[:, 0], xy[:, 1]])
    assert np.median(local_shape(wall)[1]) < 0.05
    rng = np.random.default_rng(1)
    canopy = rng.uniform(0, 10, (20000, 3))          # volume scatter: no plane fits
    rough_c, _ = local_shape(canopy)
    # 1 m voxel centroids filling a 2 m ball: the std along any axis is 2 / sqrt(5) = 0.89 for a
    # full ball; the 24 nearest of them (about 1.6 m) still spread far more than a plane
    assert np.median(rough_c) > 0.3
    lone = np.array([[0.0, 0.0, 0.0], [50.0, 0.0, 0.0]])
    r, n = local_shape(lone)
    np.testing.assert_allclose(r, ROUGHNESS_CAP)
    np.testing.assert_allclose(n, 0.5)


def test_new_features_do_not_depend_on_the_tile_position():
    rng = np.random.default_rng(3)
    xyz = np.column_stack([rng.uniform(0, 60, (8000, 2)), rng.uniform(0, 3, 8000)])
    xyz[:, 2] += np.where(np.abs(xyz[:, 0] - 30) < 10, 8.0, 0.0)
    names = ["height_above_slope_ground", "roughness", "normal_z"]
    a = build_features(xyz.astype(np.float32), PointCloud(xyz=xyz), names)
    moved = xyz + np.array([512345.0, 5403210.0, 300.0])
    local = (moved - np.floor(moved.min(0))).astype(np.float32)
    b = build_features(local, PointCloud(xyz=local), names)
    # float32 rounding can move a point across a voxel or cell border: nearly all rows agree
    assert np.mean(np.abs(a - b).max(axis=1) < 1e-3) > 0.98


def test_folder_dataset_reads_feet_las_in_metres(tmp_path):
    laspy = pytest.importorskip("laspy")
    from laspy.vlrs.known import WktCoordinateSystemVlr

    from pcseg.datasets.folder import FolderDataset
    from pcseg.io import LabelMap

    wkt = ('PROJCS["NAD83 / Oregon North (ft)",GEOGCS["NAD83",DATUM["North_American_Datum_1983",'
           'SPHEROID["GRS 1980",6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
           'PROJECTION["Lambert_Conformal_Conic_2SP"],UNIT["US survey foot",0.3048006096012192]]')
    header = laspy.LasHeader(version="1.4", point_format=6)
    header.scales, header.offsets = np.array([0.01, 0.01, 0.01]), np.array([2445000.0, 604000.0, 0.0])
    header.vlrs.append(WktCoordinateSystemVlr(wkt))
    header.global_encoding.wkt = True
    las = laspy.LasData(header)
    las.x = np.array([2445180.0, 2445280.0, 2445230.0])
    las.y = np.array([604300.0, 604300.0, 604400.0])
    las.z = np.array([1352.7, 1352.7, 1452.7])
    las.classification = np.array([2, 2, 6], np.uint8)
    las.write(str(tmp_path / "ft.las"))
    ds = FolderDataset(tmp_path, ["*.las"], LabelMap.builtin("asprs"), ["ones"])
    cloud = ds.cloud(0)
    world = cloud.xyz.astype(np.float64) + cloud.offset
    feet = 0.3048006096012192
    np.testing.assert_allclose(world[:, 0], np.asarray(las.x) * feet, atol=1e-3)
    np.testing.assert_allclose(world[:, 2] - world[0, 2], [0.0, 0.0, 100 * feet], atol=1e-3)


def test_synthetic_tiles_have_halls_wider_than_the_ground_window():
    from scipy import ndimage

    from pcseg.synth.airborne import airborne_tile

    widest = 0.0
    for seed in range(8):
        t = airborne_tile(seed, density=3)
        roof = t.xyz[t.labels == 6]
        if len(roof) == 0:
            continue
        cells = np.floor(roof[:, :2]).astype(int)
        mask = np.zeros(cells.max(0) + 1, bool)
        mask[cells[:, 0], cells[:, 1]] = True
        labelled, count = ndimage.label(ndimage.binary_closing(mask, iterations=2))
        for sl in ndimage.find_objects(labelled):
            widest = max(widest, min(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start))
    assert widest > GROUND_WINDOW


def _real_tile(shared_data, name):
    laspy = pytest.importorskip("laspy")
    from pcseg.io.las import las_metres_per_unit

    las = laspy.read(str(shared_data / "las" / name))
    metres = las_metres_per_unit(las.header)
    xyz = np.column_stack([las.x - las.x.min(), las.y - las.y.min(), las.z - las.z.min()]) * metres
    return xyz, np.asarray(las.classification)


def test_real_wide_roof_reads_as_above_ground(shared_data):
    # sample_c.las: one roof about 50 m across, 25 m above a strip of ground, nothing between
    xyz, codes = _real_tile(shared_data, "sample_c.las")
    h = slope_ground(xyz)
    hag, _ = terrain_heights(xyz)
    roof, ground = codes == 6, codes == 2
    assert np.median(hag[roof]) < 2.0                  # the opening takes the roof for ground
    assert np.median(h[roof]) > 10.0 and np.median(np.abs(h[ground])) < 0.5


def test_real_roofs_are_smoother_than_canopy(shared_data):
    # las14_fmt6.las (US feet): buildings under and beside tall trees
    xyz, codes = _real_tile(shared_data, "las14_fmt6.las")
    rough, nz = local_shape(xyz)
    building, high_veg, ground = codes == 6, codes == 5, codes == 2
    assert np.median(rough[building]) < 0.7 * np.median(rough[high_veg])
    assert np.median(rough[ground]) < 0.1 and np.median(nz[ground]) > 0.95
