"""Panoptic training on synthetic scans mixed with a real SemanticKITTI scan: the real scan's
instance ids reach the samples unchanged (checked against the .label file read with numpy and
the official learning map), ``dataset.extra_datasets`` mixes it into the training split only, and
a tiny mixed training run trains the instance head on it."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
import yaml

from pcseg.datasets import ConcatScans, FolderDataset, SyntheticDataset, collate_ragged
from pcseg.engine.builders import build_dataset
from pcseg.engine.config import validate_config
from pcseg.errors import ConfigError
from pcseg.io import LabelMap

KITTI = LabelMap.builtin("semantickitti")
REAL = "semantickitti/sequences/08/velodyne/000000.bin"


def _official_train_ids(shared_data, raw):
    """Raw SemanticKITTI ids -> train ids with the official semantic-kitti.yaml learning_map."""
    learning_map = yaml.safe_load((shared_data / "semantickitti" / "semantic-kitti.yaml").read_text())["learning_map"]
    table = np.zeros(max(learning_map) + 1, dtype=np.int64)
    for key, value in learning_map.items():
        table[key] = value
    return table[raw]


@pytest.mark.parametrize("label_replace", [None, ["_points_", "_labels_"]])
def test_folder_dataset_keeps_the_instance_ids_of_a_label_file(shared_data, kitti_scan, label_replace):
    _, label_path = kitti_scan
    packed = np.fromfile(label_path, dtype="<u4")
    instance, raw = (packed >> 16).astype(np.int64), (packed & 0xFFFF).astype(np.int64)
    # evaluation sample: every point, in file order
    ds = FolderDataset(shared_data, [REAL], KITTI, ["xyz", "intensity"], label_replace=label_replace)
    sample = ds[0]
    np.testing.assert_array_equal(sample["index"], np.arange(len(packed)))
    np.testing.assert_array_equal(sample["instance"], instance)
    np.testing.assert_array_equal(sample["labels"], _official_train_ids(shared_data, raw))
    assert len(np.unique(instance)) > 3  # the scan has several cars and people
    # training sample: subsampled and augmented, ids still those of the sampled rows
    train = FolderDataset(shared_data, [REAL], KITTI, ["xyz", "intensity"], label_replace=label_replace,
                          training=True, voxel_size=0.4, augment={"rotate_z": True, "jitter": 0.01})
    sample = train[(3, 0)]
    assert len(sample["index"]) < len(packed)
    np.testing.assert_array_equal(sample["instance"], instance[sample["index"]])
    np.testing.assert_array_equal(sample["labels"], _official_train_ids(shared_data, raw)[sample["index"]])


def _mixed_config(shared_data, out_dir, repeat=3, **train):
    raw = {
        "dataset": {"name": "synthetic", "train_split": 2, "val_split": 1, "features": ["xyz", "intensity"],
                    "voxel_size": 0.8, "augment": {"rotate_z": True, "jitter": 0.01},
                    "extra_datasets": [{"name": "folder", "root": str(shared_data), "split": [REAL],
                                        "repeat": repeat}]},
        "model": {"name": "PanopticMinkUNet", "voxel_size": 0.8, "layers": [1] * 8, "width": 0.25,
                  "cluster_size": 0.4},
        "train": {"epochs": 1, "batch_size": 1, "lr": 0.01, "out_dir": str(out_dir), "progress": False,
                  "tensorboard": False, "threads": 1, **train},
    }
    return validate_config(raw, source="mixed.yaml")


def test_extra_datasets_mix_the_real_scan_into_the_training_split_only(shared_data, kitti_scan, tmp_path):
    packed = np.fromfile(kitti_scan[1], dtype="<u4")
    config = _mixed_config(shared_data, tmp_path / "run")
    train = build_dataset(config, "train", KITTI)
    assert isinstance(train, ConcatScans) and len(train) == 2 + 3 and train.repeats == [1, 3]
    assert train.describe(0) == "synthetic scan seed=0 sensor=hdl64"
    assert all(train.describe(i).endswith("000000.bin") for i in (2, 3, 4))
    draws = [train[(0, i)] for i in (2, 3, 4)]
    for sample in draws:
        np.testing.assert_array_equal(sample["instance"], (packed >> 16)[sample["index"]])
    assert not np.array_equal(draws[0]["xyz"][:50], draws[1]["xyz"][:50])  # each repeat its own augmentation
    assert isinstance(build_dataset(config, "val", KITTI), SyntheticDataset)  # validation stays synthetic
    assert len(build_dataset(config, "val", KITTI)) == 1


def test_extra_datasets_are_checked_when_the_config_is_read(tmp_path):
    def config(entry):
        raw = {"dataset": {"name": "synthetic", "train_split": 1, "extra_datasets": [entry]},
               "model": {"name": "MinkUNet"}, "train": {"out_dir": str(tmp_path)}}
        return validate_config(raw, source="x.yaml")

    with pytest.raises(ConfigError, match=r"extra_datasets\[0\] must be a mapping with at least name and split"):
        config({"name": "folder", "root": "data"})
    with pytest.raises(ConfigError, match=r"extra_datasets\[0\]\.repeat must be a positive integer"):
        config({"name": "folder", "root": "data", "split": ["*.bin"], "repeat": 0})
    with pytest.raises(ConfigError, match=r"extra_datasets\[0\]\.features: shared with the main dataset"):
        config({"name": "folder", "root": "data", "split": ["*.bin"], "features": ["xyz"]})
    with pytest.raises(ConfigError, match=r"did you mean dataset\.extra_datasets\[0\]\.label_replace"):
        config({"name": "folder", "root": "data", "split": ["*.bin"], "label_replac": ["a", "b"]})
    with pytest.raises(ConfigError, match="unknown dataset"):
        config({"name": "no_such_dataset", "split": 1})


def test_a_tiny_mixed_panoptic_training_run(shared_data, kitti_scan, tmp_path):
    """Two synthetic scans and the real scan twice: one epoch trains, and the real scan's thing
    points enter the offset loss with one centre per (class, instance id) of its .label file."""
    from pcseg.engine.losses import instance_centres
    from pcseg.engine.trainer import Trainer

    config = _mixed_config(shared_data, tmp_path / "run", repeat=2, eval_every=1)
    trainer = Trainer(config, log=lambda *a: None)
    assert len(trainer.train_set) == 4
    batch = collate_ragged([trainer.train_set[(0, 2)]])
    things = trainer.model.things
    centres, mask = instance_centres(batch["xyz"], batch["labels"], batch["instance"], batch["offsets"], things)
    # reference: the mean of each (class, instance) group of the sample, computed with numpy
    xyz, labels, inst = batch["xyz"].numpy(), batch["labels"].numpy(), batch["instance"].numpy()
    expected = np.isin(labels, things) & (inst > 0)
    assert expected.sum() > 100
    np.testing.assert_array_equal(mask.numpy(), expected)
    for key in {(int(c), int(i)) for c, i in zip(labels[expected], inst[expected])}:
        rows = (labels == key[0]) & (inst == key[1])
        np.testing.assert_allclose(centres.numpy()[rows], np.broadcast_to(xyz[rows].mean(0), (rows.sum(), 3)),
                                   atol=1e-4)
    trainer.fit()
    with open(tmp_path / "run" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and math.isfinite(float(rows[-1]["train_loss"])) and rows[-1]["val_pq"] != ""
    assert (tmp_path / "run" / "last.pt").is_file()
    assert torch.isfinite(torch.cat([p.detach().flatten() for p in trainer.model.parameters()])).all()


def test_an_extra_dataset_without_a_feature_is_refused_before_training(shared_data, tmp_path):
    """The npy frames have no intensity: mixing them into an xyz + intensity split is a
    ConfigError naming the file when the trainer starts, not a failure at their first batch."""
    from pcseg.engine.trainer import Trainer

    config = _mixed_config(shared_data, tmp_path / "run")
    config["dataset"]["extra_datasets"] = [{"name": "folder", "root": str(shared_data),
                                            "split": ["semantickitti-npy/demo_points_000700.npy"],
                                            "label_replace": ["_points_", "_labels_"], "labels_are_train_ids": True}]
    with pytest.raises(ConfigError, match=r"intensity.*demo_points_000700\.npy|demo_points_000700\.npy.*intensity"):
        Trainer(config, log=lambda *a: None)
    assert not (tmp_path / "run" / "last.pt").exists()
