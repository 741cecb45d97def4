"""Road types of the synthetic street (pcseg.synth.road_types): rural roads and highways.

Checked against the scans' own geometry in the world frame (not against the generator's
parameters alone): grass meets the asphalt at ground level where a rural road has no sidewalk,
a highway's barrier and guard rails stand where fence points are, lanes stay on the asphalt.
"""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.errors import PcsegValueError
from pcseg.synth.lidar import lidar_scan
from pcseg.synth.street import FENCE, LAYOUTS, ROAD, SIDEWALK, TERRAIN, build_street

ALL = ("urban", "rural", "highway")


def world_points(seed, layouts):
    cloud, (scene, position, yaw) = lidar_scan(seed, noise=False, return_scene=True, layouts=layouts)
    c, s = np.cos(yaw), np.sin(yaw)
    x, y = cloud.xyz[:, 0].astype(np.float64), cloud.xyz[:, 1].astype(np.float64)
    world = np.stack([c * x - s * y, s * x + c * y, cloud.xyz[:, 2].astype(np.float64)], axis=1) + position
    return world, cloud.labels


def seed_of(kind, start=0, want=None):
    """The first seed >= start whose drawn road type is ``kind`` (and whose layout passes ``want``)."""
    for seed in range(start, start + 200):
        _, layout = build_street(seed, layouts=ALL)
        if layout.kind == kind and (want is None or want(layout)):
            return seed
    raise AssertionError(f"no {kind} layout in 200 seeds")


def test_every_road_type_is_drawn_and_a_single_type_is_always_that_type():
    kinds = {build_street(seed, layouts=ALL)[1].kind for seed in range(30)}
    assert kinds == set(LAYOUTS)
    assert {build_street(seed, layouts=["rural"])[1].kind for seed in range(10)} == {"rural"}


def test_default_is_the_urban_street_and_scenes_are_deterministic():
    for seed in range(3):
        scene, layout = build_street(seed)
        assert layout.kind == "urban" and layout.sidewalks == (True, True) and layout.grass_roughness == 0.12
        again, _ = build_street(seed)
        assert scene.labels == again.labels and np.array_equal(np.asarray(scene.reflectivity), np.asarray(again.reflectivity))
    a, _ = build_street(7, layouts=ALL)
    b, _ = build_street(7, layouts=ALL)
    assert a.labels == b.labels


def test_rural_grass_meets_the_road_at_ground_level_without_sidewalk():
    seed = seed_of("rural", want=lambda lay: lay.sidewalks == (False, False) and lay.cross_x is None)
    world, labels = world_points(seed, ALL)
    _, layout = build_street(seed, layouts=ALL)
    assert not np.any(labels == SIDEWALK)
    ground_z = world[labels == ROAD, 2]
    np.testing.assert_allclose(ground_z, 0.0, atol=1e-6)
    # grass in the first metre beyond the asphalt: no curb, only the grass layer's roughness above z = 0
    edge = (labels == TERRAIN) & (np.abs(world[:, 1]) > layout.road_half_width) & (np.abs(world[:, 1]) < layout.road_half_width + 1.0)
    assert edge.sum() > 50
    assert world[edge, 2].min() >= -1e-6 and world[edge, 2].max() <= layout.grass_roughness + 1e-6


def test_urban_sidewalk_is_raised_by_the_curb():
    """The reference the rural case differs from: urban sidewalk points stand a curb above the road."""
    world, labels = world_points(0, None)
    _, layout = build_street(0)
    z = world[labels == SIDEWALK, 2]
    assert len(z) > 100 and np.median(z) == pytest.approx(layout.curb_height, abs=1e-3)


@pytest.mark.parametrize("grass", [True, False])
def test_highway_median_lanes_and_barriers(grass):
    seed = seed_of("highway", want=lambda lay: lay.grass_median == grass)
    scene, layout = build_street(seed, layouts=ALL)
    world, labels = world_points(seed, ALL)
    assert layout.sidewalks == (False, False) and layout.cross_x is None and not np.any(labels == SIDEWALK)
    label_fn = scene.ground_label
    # the ego lane is asphalt; the median is grass or a barrier on asphalt
    assert label_fn(np.array([0.0]), np.array([layout.ego_lane_y]))[0] == ROAD
    assert label_fn(np.array([0.0]), np.array([0.0]))[0] == (TERRAIN if grass else ROAD)
    # fence points (barrier or guard rails) stand within the median, at most 1.1 m high
    in_median = (labels == FENCE) & (np.abs(world[:, 1]) < layout.median_half_width + 0.01)
    assert in_median.sum() > 100
    assert world[in_median, 2].max() <= 1.1 + 1e-6
    # the ego lane lies between the median and the road edge
    assert layout.median_half_width < -layout.ego_lane_y < layout.road_half_width


def test_layouts_are_checked():
    with pytest.raises(PcsegValueError, match="motorway"):
        build_street(0, layouts=["urban", "motorway"])
    with pytest.raises(PcsegValueError, match="layouts"):
        build_street(0, layouts=[])


def test_dataset_passes_layouts_and_rejects_them_for_other_sensors():
    from pcseg.datasets.synthetic import SyntheticDataset
    from pcseg.io import LabelMap

    lm = LabelMap.builtin("semantickitti")
    seed = seed_of("highway")
    ds = SyntheticDataset(1, seed, lm, ["xyz"], layouts=["urban", "rural", "highway"])
    cloud = ds.load_cloud(0)
    assert ds.layouts == ALL
    np.testing.assert_array_equal(cloud.xyz, lidar_scan(seed, layouts=ALL).xyz)
    assert np.any(cloud.labels == lm.to_train(np.array([FENCE]))[0])
    with pytest.raises(PcsegValueError, match="room_scan"):
        SyntheticDataset(1, 0, lm, ["xyz"], sensor="room_scan", layouts=["rural"])


def test_ground_options_set_curb_height_and_asphalt_spread_seen_in_the_scan():
    ground = {"curb_height": [0.05, 0.05, 0.05], "paved_roughness": [0.03, 0.03]}
    cloud, (scene, position, yaw) = lidar_scan(0, noise=False, return_scene=True, ground=ground)
    c, s = np.cos(yaw), np.sin(yaw)
    x, y = cloud.xyz[:, 0].astype(np.float64), cloud.xyz[:, 1].astype(np.float64)
    z = cloud.xyz[:, 2].astype(np.float64) + position[2]
    assert np.median(z[cloud.labels == SIDEWALK]) == pytest.approx(0.05, abs=1e-3)  # the curb we asked for
    road = z[cloud.labels == ROAD]
    assert road.min() >= -1e-6 and road.max() <= 0.03 + 1e-6 and road.std() > 0.005  # rough asphalt, within 3 cm
    default_scene, default = build_street(0)
    assert default.curb_height >= 0.10 and default.paved_roughness == 0.0  # the urban street's own ranges
    for seed in range(20):  # drawn from the triangular range
        _, layout = build_street(seed, ground={"curb_height": [0.04, 0.08, 0.16]})
        assert 0.04 <= layout.curb_height <= 0.16


def test_grass_options_smooth_and_lift_the_grass_seen_in_the_scan():
    # grass 0.2 m above the road plane, its returns spread at most 1 cm: measured on the points
    ground = {"grass_roughness": [0.01, 0.01], "terrain_rise": [0.2, 0.2]}
    seed = seed_of("rural")
    plain_world, plain_labels = world_points(seed, ["rural"])
    cloud, (scene, position, yaw) = lidar_scan(seed, noise=False, return_scene=True, layouts=["rural"], ground=ground)
    z = cloud.xyz[:, 2].astype(np.float64) + position[2]
    grass, road = z[cloud.labels == TERRAIN], z[cloud.labels == ROAD]
    assert len(grass) > 1000 and len(road) > 1000
    assert grass.min() >= 0.2 - 1e-6 and grass.max() <= 0.21 + 1e-6  # lifted by 0.2, spread <= 1 cm
    assert np.abs(road).max() < 1e-6  # the asphalt stays on the plane
    assert np.ptp(plain_world[plain_labels == TERRAIN, 2]) > 0.02  # the road type's own rougher grass


def test_undulation_raises_every_return_by_the_relief_under_it():
    ground = {"undulation": [0.3, 0.3]}
    cloud, (scene, position, yaw) = lidar_scan(3, noise=False, return_scene=True, ground=ground)
    _, layout = build_street(3, ground=ground)
    assert len(layout.undulation) == 3 and sum(a for a, *_ in layout.undulation) == pytest.approx(0.3)
    c, s = np.cos(yaw), np.sin(yaw)
    x, y = cloud.xyz[:, 0].astype(np.float64), cloud.xyz[:, 1].astype(np.float64)
    wx, wy = c * x - s * y + position[0], s * x + c * y + position[1]

    def relief(px, py):  # the three plane waves, written out
        return sum(a * np.sin(2 * np.pi * (px * np.cos(d) + py * np.sin(d)) / w + p) for a, w, d, p in layout.undulation)

    road = cloud.labels == ROAD
    z_world = cloud.xyz[road, 2].astype(np.float64) + position[2]
    # the road plane follows the relief, relative to the ground under the sensor (which stays a
    # sensor height below it)
    np.testing.assert_allclose(z_world, relief(wx[road], wy[road]) - relief(position[0], position[1]), atol=1e-4)
    assert np.ptp(z_world) > 0.05
    flat = lidar_scan(3, noise=False, ground={})
    assert len(flat.xyz) > 0 and np.abs(flat.xyz[flat.labels == ROAD, 2] + position[2]).max() < 1e-4


@pytest.mark.parametrize("bad", [{"curbs": [0.1, 0.1, 0.1]}, {"curb_height": [0.1, 0.05, 0.2]},
                                 {"paved_roughness": [0.01]}, {"curb_height": "high"}, [0.1],
                                 {"terrain_rise": [0.3, 0.1]}, {"undulation": [0.2]}])
def test_ground_options_are_checked(bad):
    with pytest.raises(PcsegValueError, match="ground option|ground options"):
        build_street(0, ground=bad)


def test_synthetic_config_dataset_takes_ground_options(tmp_path):
    # `dataset.ground` of a `name: synthetic` config reaches the generated scans
    from pcseg.engine.builders import build_dataset
    from pcseg.engine.config import load_config
    from pcseg.io import LabelMap

    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: {name: synthetic, label_map: semantickitti, train_split: 1, val_split: 1, seed: 0,\n"
                   "          layouts: [urban], ground: {curb_height: [0.05, 0.05, 0.05], paved_roughness: [0, 0]},\n"
                   "          features: [xyz]}\nmodel: {name: MinkUNet}\n")
    lm = LabelMap.builtin("semantickitti")
    ds = build_dataset(load_config(cfg), "train", lm)
    cloud = ds.load_cloud(0)
    expected = lidar_scan(0, layouts=["urban"], ground={"curb_height": [0.05, 0.05, 0.05], "paved_roughness": [0, 0]})
    np.testing.assert_array_equal(cloud.xyz, expected.xyz)
    assert not np.array_equal(cloud.xyz, lidar_scan(0, layouts=["urban"]).xyz)  # the default curbs differ
