"""Reconstructed-room scans (pcseg.synth.scene_scan): labels, colours, density, determinism, and
every furniture class lying where its solids are."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.errors import PcsegValueError
from pcseg.io import LabelMap
from pcseg.synth.room_types import ROOM_KINDS, build_scan_room
from pcseg.synth.scene_scan import scene_scan

SMALL = dict(width=96, views=30)  # few rays: quick, still a whole room
# ScanNet's 20 benchmark classes as NYU40 ids (the official mapping, written out independently)
BENCHMARK_NYU40 = {1: "wall", 2: "floor", 3: "cabinet", 4: "bed", 5: "chair", 6: "sofa", 7: "table", 8: "door",
                   9: "window", 10: "bookshelf", 11: "picture", 12: "counter", 14: "desk", 16: "curtain",
                   24: "refrigerator", 28: "shower curtain", 33: "toilet", 34: "sink", 36: "bathtub",
                   39: "otherfurniture"}
IGNORED_NYU40 = {22, 38, 40}  # ceiling, otherstructure (columns), otherprop (small clutter)


@pytest.fixture(scope="module")
def rooms():
    """One exact (noise-free, room-frame) scan per room kind, with its room (seed 9: every class is in one)."""
    return {kind: scene_scan(9, kind=kind, noise=False, frame="room", voxel_size=0.03, return_room=True, **SMALL)
            for kind in ROOM_KINDS}


def test_labels_are_nyu40_ids_of_the_scannet_benchmark(rooms):
    label_map = LabelMap.builtin("scannet")
    for cloud, _ in rooms.values():
        ids = set(np.unique(cloud.labels).tolist())
        assert ids <= set(BENCHMARK_NYU40) | IGNORED_NYU40, ids
        train = label_map.to_train(cloud.labels)
        benchmark = np.isin(cloud.labels, list(BENCHMARK_NYU40))
        assert np.all(train[benchmark] > 0) and np.all(train[~benchmark] == 0)
        names = {label_map.class_names[t] for t in np.unique(train[benchmark])}
        assert names == {BENCHMARK_NYU40[i] for i in np.unique(cloud.labels[benchmark])}


def test_every_benchmark_class_appears_across_room_kinds(rooms):
    seen = set().union(*(np.unique(cloud.labels).tolist() for cloud, _ in rooms.values()))
    assert set(BENCHMARK_NYU40) <= seen, sorted(set(BENCHMARK_NYU40) - seen)


def inside_solids(points, scene, mask, tol):
    """bool (M,): each point lies within ``tol`` of the bounding box of one of the solids ``mask``."""
    centers, half, yaw = scene.bounding_boxes()
    ok = np.zeros(len(points), dtype=bool)
    for i in np.flatnonzero(mask):
        rel = points - centers[i]
        c, s = np.cos(yaw[i]), np.sin(yaw[i])
        local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], axis=1)
        ok |= np.all(np.abs(local) <= half[i] + tol, axis=1)
    return ok


def test_each_class_lies_on_its_own_solids(rooms):
    for kind, (cloud, room) in rooms.items():
        scene = room.scene
        labels, instances = np.asarray(scene.labels), np.asarray(scene.instances)
        xyz = cloud.xyz.astype(np.float64)
        for label in np.unique(cloud.labels):
            for inst in np.unique(cloud.instance[cloud.labels == label]):
                rows = (cloud.labels == label) & (cloud.instance == inst)
                mask = (labels == label) & (instances == inst)
                ok = inside_solids(xyz[rows], scene, mask, tol=1e-3)
                assert ok.all(), f"{kind}: {(~ok).sum()} points of NYU40 {label} off its solids"


def test_furniture_sizes_are_plausible(rooms):
    cloud, _ = rooms["bathroom"]
    toilet = cloud.xyz[cloud.labels == 33]
    assert len(toilet) > 20 and 0.0 <= toilet[:, 2].min() and 0.6 < toilet[:, 2].max() <= 0.8
    tub = cloud.xyz[cloud.labels == 36]
    assert len(tub) > 20 and tub[:, 2].max() <= 0.6 + 1e-3
    cloud, _ = rooms["kitchen"]
    fridge = cloud.xyz[cloud.labels == 24]
    assert len(fridge) > 20 and 1.4 < fridge[:, 2].max() <= 1.95 + 1e-3
    counter = cloud.xyz[cloud.labels == 12]
    assert len(counter) > 20 and 0.84 < counter[:, 2].max() <= 0.95
    for cloud, room in rooms.values():  # floor at z = 0, everything inside the room's box
        np.testing.assert_allclose(cloud.xyz[cloud.labels == 2][:, 2], 0.0, atol=1e-4)
        assert np.all(cloud.xyz >= -1e-3) and np.all(cloud.xyz <= room.size + 1e-3)


def test_colours_and_voxel_density():
    cloud = scene_scan(3, voxel_size=0.03, frame="room", **SMALL)
    assert cloud.rgb.dtype == np.float32 and cloud.rgb.min() >= 0.0 and cloud.rgb.max() <= 1.0
    assert cloud.rgb.std(axis=0).min() > 0.02  # not a flat colour
    cells = np.floor(cloud.xyz.astype(np.float64) / 0.03).astype(np.int64)
    distinct = len(np.unique(cells, axis=0))
    assert distinct >= 0.999 * len(cloud)  # one point per voxel (float32 rounding may move a few)
    # surfaces are dense: nearest neighbours about one voxel apart
    from scipy.spatial import cKDTree

    d, _ = cKDTree(cloud.xyz).query(cloud.xyz, k=2)
    assert 0.01 < np.median(d[:, 1]) < 0.045


def test_noise_drops_the_ceiling_in_most_scans_and_keeps_it_without():
    exact = scene_scan(11, noise=False, **SMALL)
    assert np.any(exact.labels == 22)
    without = sum(not np.any(scene_scan(seed, voxel_size=0.08, **SMALL).labels == 22) for seed in range(6))
    assert without >= 3


def test_random_frame_is_a_rigid_motion_of_the_room_frame():
    from scipy.spatial.distance import pdist

    a = scene_scan(5, frame="room", noise=False, voxel_size=0.1, **SMALL)
    b = scene_scan(5, frame="random", noise=False, voxel_size=0.1, **SMALL)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(pdist(a.xyz[::7]), pdist(b.xyz[::7]), atol=1e-4)  # distances kept
    np.testing.assert_allclose(b.xyz[:, 2], a.xyz[:, 2] + (b.xyz[0, 2] - a.xyz[0, 2]), atol=1e-4)  # z up kept
    assert b.xyz[:, :2].min() > -0.35 and b.xyz[:, 2][b.labels == 2].mean() == pytest.approx(0.0, abs=0.1)


def test_same_seed_same_scan_other_seed_other_scan():
    a, b = scene_scan(2, voxel_size=0.06, **SMALL), scene_scan(2, voxel_size=0.06, **SMALL)
    for name in ("xyz", "rgb", "labels", "instance"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = scene_scan(3, voxel_size=0.06, **SMALL)
    assert len(c) != len(a) or not np.array_equal(c.xyz, a.xyz)
    r1, k1 = build_scan_room(4)
    r2, k2 = build_scan_room(4)
    assert k1 == k2 and len(r1.scene) == len(r2.scene)


@pytest.mark.parametrize("kwargs", [dict(voxel_size=0), dict(frame="world"), dict(width=4), dict(views=0)])
def test_bad_options_are_value_errors(kwargs):
    with pytest.raises(PcsegValueError):
        scene_scan(0, **kwargs)


def test_synthetic_dataset_room_scan_option():
    from pcseg.datasets.synthetic import synthetic_dataset

    label_map = LabelMap.builtin("scannet")
    ds = synthetic_dataset(split=1, label_map=label_map, features=["xyz", "rgb"], sensor="room_scan",
                           scan={"voxel_size": 0.08, "width": 64, "views": 12})
    sample = ds[0]
    assert sample["feats"].shape == (len(sample["xyz"]), 6)
    assert sample["labels"].min() >= 0 and sample["labels"].max() < label_map.num_classes
    direct = scene_scan(0, voxel_size=0.08, width=64, views=12)
    np.testing.assert_array_equal(sample["labels"], label_map.to_train(direct.labels))
    with pytest.raises(PcsegValueError, match="dataset.scan"):
        synthetic_dataset(split=1, label_map=label_map, features=["xyz"], sensor="room_scan", scan={"voxel": 1})
    with pytest.raises(PcsegValueError, match="dataset.scan"):
        synthetic_dataset(split=1, label_map=label_map, features=["xyz"], sensor="hdl64", scan={"width": 64})


def test_color_jitter_and_colour_dropout():
    from pcseg.datasets.transforms import NO_COLOR, color_jitter

    rng = np.random.default_rng(0)
    rgb = rng.random((500, 3)).astype(np.float32)
    np.testing.assert_array_equal(color_jitter(rgb, 0.0, 0.0, rng), rgb)
    np.testing.assert_array_equal(color_jitter(rgb, 0.1, 1.0, rng), np.full_like(rgb, NO_COLOR))
    out = color_jitter(rgb, 0.3, 0.0, rng)
    assert out.min() >= 0 and out.max() <= 1 and not np.allclose(out, rgb)
    assert np.corrcoef(out[:, 0], rgb[:, 0])[0, 1] > 0.5  # jittered, not scrambled
