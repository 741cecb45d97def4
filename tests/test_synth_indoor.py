"""Synthetic RGB-D: frames back-project onto the room's surfaces, noise model, files, determinism."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pcseg.synth.indoor import INDOOR_CLASS_NAMES, build_room, depth_frame
from pcseg.synth.indoor_writer import write_depth_dataset, write_frame
from pcseg.synth.raycast import BOX, ELLIPSOID

SMALL = dict(width=160, height=120, fx=131.25, fy=131.25)  # the 640x480 camera at 1/4 scale


def on_surface(points, kind, p, tol):
    """Whether each point (M, 3) lies within ``tol`` of the solid's surface (inside the grown, outside the shrunk solid)."""
    rel = points - p["center"]
    c, s = np.cos(p["yaw"]), np.sin(p["yaw"])
    local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], axis=1)
    if kind == BOX:
        grown = np.all(np.abs(local) <= p["half"] + tol, axis=1)
        shrunk = np.all(np.abs(local) < p["half"] - tol, axis=1)
        return grown & ~shrunk
    assert kind == ELLIPSOID
    value = np.sum((local / p["radii"]) ** 2, axis=1)
    return np.abs(np.sqrt(value) - 1.0) * p["radii"].min() <= tol * 3


@pytest.mark.parametrize("seed", [0, 5])
def test_depth_back_projects_onto_the_labelled_surfaces(tmp_path, seed):
    from pcseg.io import read_depth

    frame = depth_frame(seed, noise=False)
    paths = write_frame(frame, tmp_path, 0)
    import json

    from pcseg.synth.indoor import camera_json

    (tmp_path / "intrinsics.json").write_text(json.dumps(camera_json(frame.intrinsics)))
    cloud = read_depth(paths["depth"], tmp_path / "intrinsics.json", depth_scale=1000.0, color_path=paths["color"])
    assert len(cloud) == np.count_nonzero(frame.depth) > 0.3 * frame.depth.size
    world = cloud.xyz.astype(np.float64) @ frame.pose[:3, :3].T + frame.pose[:3, 3]
    u, v = cloud.pixels[:, 0], cloud.pixels[:, 1]
    labels, instance = frame.labels[v, u], frame.instance[v, u]
    scene = frame.room.scene
    ok = np.zeros(len(world), dtype=bool)
    for i, (kind, p) in enumerate(zip(scene.kinds, scene.params)):
        mine = (labels == scene.labels[i]) & (instance == scene.instances[i]) & ~ok
        if mine.any():
            ok[mine] = on_surface(world[mine], kind, p, tol=3e-3)
    # millimetre quantisation along z moves points by < 0.5 mm * (ray length / z)
    assert ok.mean() > 0.999, f"{(~ok).sum()} points off their labelled surface"
    # the room frame: floor points at z = 0
    floor = world[labels == 2]
    np.testing.assert_allclose(floor[:, 2], 0.0, atol=3e-3)
    assert cloud.rgb is not None and cloud.rgb.shape == (len(cloud), 3)


def test_kinect_noise_model_and_holes():
    exact = depth_frame(3, noise=False)
    noisy = depth_frame(3, noise=True)
    np.testing.assert_array_equal(exact.labels, noisy.labels)
    both = (exact.depth > 0) & (noisy.depth > 0)
    z = exact.true_depth[both]
    err = noisy.depth[both] / 1000.0 - z
    sigma = 0.0012 + 0.0019 * (z - 0.4) ** 2
    # normalised errors are standard normal, up to the 1 mm quantisation
    assert abs(np.mean(err / sigma)) < 0.1
    assert 0.8 < np.std(err / np.sqrt(sigma**2 + 1e-6 / 12)) < 1.2
    holes = (noisy.depth == 0) & (exact.depth > 0)
    assert 0.005 < holes.mean() < 0.4
    glass = exact.labels == 9
    if glass.any():
        assert (noisy.depth[glass] == 0).mean() > 0.5
    assert np.all(noisy.depth[np.isfinite(exact.true_depth) & (exact.true_depth > 4.5)] == 0)


def test_every_indoor_class_appears_across_a_handful_of_rooms():
    seen = set()
    for seed in range(8):
        seen |= set(build_room(seed).scene.labels)
    assert seen == set(INDOOR_CLASS_NAMES), f"missing {set(INDOOR_CLASS_NAMES) - seen}"
    rendered = set()
    for seed in range(6):
        rendered |= set(np.unique(depth_frame(seed, **SMALL).labels).tolist())
    assert len(rendered) >= 9


def test_labels_are_scannet_raw_ids():
    from pcseg.io import LabelMap

    label_map = LabelMap.builtin("scannet")
    frame = depth_frame(1, **SMALL)
    train = label_map.to_train(frame.labels.astype(np.int64).ravel())
    names = {label_map.class_names[t] for t in np.unique(train)}
    assert names <= {"unannotated", *INDOOR_CLASS_NAMES.values()}
    assert np.all(train[frame.labels.ravel() != 22] > 0)  # only the ceiling is unannotated


def test_written_dataset_is_deterministic_and_complete(tmp_path):
    from pcseg.io import read_depth

    for name in ("a", "b"):
        write_depth_dataset(tmp_path / name, scenes=("scene0000",), frames_per_scene=2, seed=3, progress=False, **SMALL)
    digests = [{str(p.relative_to(tmp_path / n)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted((tmp_path / n).rglob("*")) if p.is_file()} for n in ("a", "b")]
    assert digests[0] == digests[1] and len(digests[0]) == 2 * 4 + 3
    scene = tmp_path / "a" / "scene0000"
    cloud = read_depth(scene / "depth/000001.png", scene / "intrinsics.json")
    assert len(cloud) > 1000 and np.all(cloud.xyz[:, 2] > 0.3)
    poses = np.loadtxt(scene / "poses.txt").reshape(-1, 3, 4)
    assert len(poses) == 2 and not np.allclose(poses[0], poses[1])


def test_cli_rgbd(tmp_path):
    from pcseg.cli import main

    assert main(["synth", "--out", str(tmp_path), "--sensor", "rgbd", "--sequences", "room0", "--scans", "1", "--no-progress"]) == 0
    assert (tmp_path / "room0/depth/000000.png").exists() and (tmp_path / "room0/intrinsics.json").exists()


def test_bad_arguments():
    from pcseg.errors import PcsegValueError

    with pytest.raises(PcsegValueError, match="width and height"):
        depth_frame(0, width=4)
    with pytest.raises(PcsegValueError, match="frames_per_scene"):
        write_depth_dataset("/nonexistent", frames_per_scene=0)
