"""Training splits that mix sources: real frames in several layouts, repeats, generated scans."""

import numpy as np
import pytest

from pcseg.datasets import ConcatScans, FolderDataset, SemanticKITTIDataset, SyntheticDataset
from pcseg.engine.builders import build_dataset
from pcseg.engine.config import validate_config
from pcseg.errors import ConfigError
from pcseg.io import LabelMap
from test_engine_support import toy_scan, write_toy_kitti

KITTI = LabelMap.builtin("semantickitti")
AUG = {"rotate_z": True, "jitter": 0.01}


def _npy_frame(folder, name, seed, n=200):
    """An Open3D-ML style pair: (n,3) points and (n,1) train-id labels."""
    points, raw = toy_scan(seed, n)
    np.save(folder / f"{name}_points_000000.npy", points[:, :3])
    np.save(folder / f"{name}_labels_000000.npy", KITTI.to_train(raw).reshape(-1, 1).astype(np.int32))
    return points, raw


def test_folder_split_mixes_npy_train_ids_and_kitti_layout_raw_ids(tmp_path):
    write_toy_kitti(tmp_path, sequences=("08",), scans=1, n=300)
    (tmp_path / "npy").mkdir()
    _, npy_raw = _npy_frame(tmp_path / "npy", "a", seed=42)
    ds = FolderDataset(tmp_path, ["npy/*_points_*.npy", "sequences/08/velodyne/*.bin"], KITTI, ["xyz"],
                       label_replace=["_points_", "_labels_"], labels_are_train_ids=True)
    # the npy labels are train ids as given; the .label file's raw ids go through the learning map
    np.testing.assert_array_equal(ds[0]["labels"], KITTI.to_train(npy_raw))
    _, kitti_raw = toy_scan(0, 300)
    expected = np.select([kitti_raw == 40, kitti_raw == 10, kitti_raw == 50, kitti_raw == 70], [9, 1, 13, 15], 0)
    np.testing.assert_array_equal(ds[1]["labels"], expected)


def test_concat_repeats_draw_their_own_augmentation(tmp_path):
    root = write_toy_kitti(tmp_path, sequences=("00",), scans=2, n=300)
    real = SemanticKITTIDataset(root, ["00"], KITTI, ["xyz"], training=True, augment=AUG, seed=1)
    synth = SyntheticDataset(2, 0, KITTI, ["xyz"], training=True, augment=AUG, seed=1, voxel_size=0.5)
    ds = ConcatScans([real, synth], [3, 1])
    assert len(ds) == 3 * 2 + 2
    assert [ds.describe(i) for i in (0, 2, 6)] == [real.describe(0), real.describe(0), synth.describe(0)]
    first, repeat = ds[(0, 0)], ds[(0, 2)]
    # the same scan, its own rotation: equal labels and radii, different coordinates
    np.testing.assert_array_equal(first["labels"], repeat["labels"])
    np.testing.assert_allclose(np.linalg.norm(first["xyz"][:, :2], axis=1),
                               np.linalg.norm(repeat["xyz"][:, :2], axis=1), atol=0.1)
    assert not np.allclose(first["xyz"], repeat["xyz"])
    np.testing.assert_array_equal(ds[(0, 2)]["xyz"], repeat["xyz"])  # deterministic
    assert not np.array_equal(ds[(1, 2)]["xyz"], repeat["xyz"])  # and new each epoch
    hist = ds.label_histogram()
    np.testing.assert_array_equal(hist, 3 * real.label_histogram() + synth.label_histogram())


def _config(root, tmp_path, **dataset):
    raw = {"dataset": {"name": "semantickitti", "root": str(root), "train_split": ["00"], "val_split": ["00"],
                       "features": ["xyz"], **dataset},
           "model": {"name": "MinkUNet"}, "train": {"out_dir": str(tmp_path / "run")}}
    return validate_config(raw, source="mix.yaml")


def test_config_adds_synthetic_scans_to_the_training_split_only(tmp_path):
    root = write_toy_kitti(tmp_path, sequences=("00",), scans=2, n=300)
    config = _config(root, tmp_path, repeat=2, synthetic_scans=3, synthetic_seed=7)
    train = build_dataset(config, "train", KITTI)
    assert isinstance(train, ConcatScans) and len(train) == 2 * 2 + 3
    assert train.describe(4) == "synthetic scan seed=7 sensor=hdl64"
    assert len(build_dataset(config, "val", KITTI)) == 2
    assert isinstance(build_dataset(_config(root, tmp_path), "train", KITTI), SemanticKITTIDataset)
    with pytest.raises(ConfigError, match="dataset.repeat"):
        _config(root, tmp_path, repeat=0)
    with pytest.raises(ConfigError, match="dataset.synthetic_scans"):
        _config(root, tmp_path, synthetic_scans=-1)


def test_polar_mix_swaps_half_a_turn_and_pastes_objects_at_new_bearings():
    from pcseg.datasets import transforms as T

    rng = np.random.default_rng(0)
    angle_a, angle_b = rng.uniform(0, 2 * np.pi, 2000), rng.uniform(0, 2 * np.pi, 1500)
    ring = lambda ang, r: np.stack([r * np.cos(ang), r * np.sin(ang), np.zeros_like(ang)], 1).astype(np.float32)  # noqa: E731
    xyz_a, xyz_b = ring(angle_a, 10.0), ring(angle_b, 20.0)
    labels_a = np.full(2000, 9)
    labels_b = np.where(np.arange(1500) < 30, 6, 9)  # 30 "person" points
    keep_a, sector_b, paste_b, angles = T.polar_mix(xyz_a, labels_a, xyz_b, labels_b, [6], np.random.default_rng(3))
    # the kept part of a and the part taken from b are complementary half turns
    az_a, az_b = T.azimuth(xyz_a[keep_a]), T.azimuth(xyz_b[sector_b])
    assert abs(len(keep_a) / 2000 - 0.5) < 0.05 and abs(len(sector_b) / 1500 - 0.5) < 0.05
    gap = lambda x, y: np.abs(np.angle(np.exp(1j * (x[:, None] - y[None, :])))).min()  # noqa: E731
    assert gap(az_a, az_b) < 0.05  # they meet at the sector borders ...
    inside = np.mod(az_b - az_b.min(), 2 * np.pi).max()
    assert inside <= np.pi + 1e-9  # ... and b's part spans at most half a turn
    # only the pasted class, three copies, the first in place, the others rotated about z
    assert set(labels_b[paste_b]) == {6} and len(paste_b) == 3 * 30
    pasted = T.rotate_rows_z(xyz_b[paste_b], angles)
    np.testing.assert_allclose(np.linalg.norm(pasted[:, :2], axis=1), 20.0, rtol=1e-5)
    np.testing.assert_allclose(pasted[:30], xyz_b[:30], atol=1e-5)
    turned = np.angle(np.exp(1j * (T.azimuth(pasted[30:60]) - T.azimuth(xyz_b[:30]))))
    np.testing.assert_allclose(turned, np.angle(np.exp(1j * angles[30:60])), atol=1e-4)


def test_polar_mix_in_a_training_sample_keeps_labels_with_their_points(tmp_path):
    root = write_toy_kitti(tmp_path, sequences=("00",), scans=2, n=400)
    aug = {"polar_mix": 1.0, "paste_classes": [1]}  # paste cars (train id 1)
    ds = SemanticKITTIDataset(root, ["00"], KITTI, ["xyz"], training=True, augment=aug, seed=2)
    sample = ds[(0, 0)]
    donor = ds.cloud(1)
    cars = int((donor.labels == 1).sum())
    # half of each scan plus three copies of the donor's cars
    assert abs(len(sample["labels"]) - (400 + 3 * cars)) < 60
    assert (sample["labels"] == 1).sum() >= 3 * cars
