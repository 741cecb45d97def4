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
