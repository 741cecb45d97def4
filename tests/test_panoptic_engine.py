"""Panoptic training and inference end to end: instance ids through the datasets, the offset
loss in training, Segmenter.panoptic, ``pcseg segment --panoptic`` and ``pcseg score --panoptic``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcseg.cli import main
from pcseg.engine.config import validate_config
from pcseg.engine.trainer import Trainer
from pcseg.io import LabelMap, PointCloud, read_labels

QUIET = dict(log=lambda *a: None)


def panoptic_config(out_dir, **train):
    raw = {
        "dataset": {"name": "synthetic", "train_split": 2, "val_split": 1, "features": ["xyz", "intensity"],
                    "voxel_size": 0.8, "augment": {"rotate_z": True}},
        "model": {"name": "PanopticMinkUNet", "voxel_size": 0.8, "layers": [1] * 8, "width": 0.25,
                  "cluster_size": 0.3},
        "train": {"epochs": 1, "batch_size": 1, "lr": 0.01, "out_dir": str(out_dir), "progress": False,
                  "tensorboard": False, "threads": 1, **train},
    }
    return validate_config(raw, source="test")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("panoptic_run")
    Trainer(panoptic_config(out), **QUIET).fit()
    return out / "last.pt"


def test_real_scan_dataset_carries_instances(kitti_scan):
    from pcseg.datasets import SemanticKITTIDataset, collate_ragged

    bin_path, label_path = kitti_scan
    root = bin_path.parents[3]
    ds = SemanticKITTIDataset(root, ["08"], LabelMap.builtin("semantickitti"), ["xyz", "intensity"])
    sample = ds[0]
    packed = np.fromfile(label_path, dtype="<u4")
    np.testing.assert_array_equal(sample["instance"], (packed >> 16)[sample["index"]])
    assert len(np.unique(sample["instance"])) > 3
    batch = collate_ragged([sample, sample])
    assert batch["instance"].shape == (2 * len(packed),) and batch["instance"].dtype == torch.int64


def test_synthetic_instances_and_scan_mix():
    from pcseg.datasets import SyntheticDataset
    from pcseg.datasets.base import _mix
    from pcseg.synth import lidar_scan

    lm = LabelMap.builtin("semantickitti")
    ds = SyntheticDataset(1, 5, lm, ["xyz", "intensity"])
    sample = ds[0]
    np.testing.assert_array_equal(sample["instance"], lidar_scan(seed=5).instance[sample["index"]])
    a = PointCloud(xyz=np.array([[1, 0, 0], [0, 1, 0.5]], np.float32), labels=np.array([1, 9]), instance=np.array([1, 0]))
    b = PointCloud(xyz=np.array([[1, 0, 0.2], [0, 1, 0.3]], np.float32), labels=np.array([1, 9]), instance=np.array([1, 0]))
    mixed = _mix(a, b, 1, np.random.default_rng(0))
    if len(mixed) == 4:  # both scans kept: their instance 1s stay two instances
        assert sorted(mixed.instance.tolist()) == [0, 0, 1, 3]


def test_offset_loss_trains_the_head(tmp_path):
    """Only the offset loss: after a few steps on one scan the offsets are closer to the truth."""
    from pcseg.engine.losses import offset_l1_sum

    config = panoptic_config(tmp_path / "run", ce_weight=0.0, lovasz_weight=0.0, offset_weight=1.0, lr=0.01,
                             scheduler="none", epochs=12, eval_every=100)
    config["dataset"]["train_split"] = 1
    config["dataset"]["augment"]["rotate_z"] = False
    config["dataset"]["voxel_size"] = None
    trainer = Trainer(config, **QUIET)
    from pcseg.datasets import collate_ragged

    batch = collate_ragged([trainer.train_set[0]])

    def error():  # in training mode: BatchNorm's running statistics lag behind after a few steps
        trainer.model.train()
        with torch.no_grad():
            _, off = trainer.model.forward_panoptic(batch["xyz"], batch["feats"], batch["offsets"])
        total, count = offset_l1_sum(off, batch["xyz"], batch["labels"], batch["instance"], batch["offsets"],
                                     trainer.model.things)
        return float(total / count)

    before = error()
    for _ in range(12):
        trainer.train_step(batch)
    assert error() < 0.7 * before


def test_segmenter_panoptic_and_cli(checkpoint, tmp_path, capsys):
    from pcseg.engine.panoptic import predict_panoptic
    from pcseg.engine.segmenter import Segmenter
    from pcseg.synth import lidar_scan

    payload = torch.load(checkpoint, weights_only=True)
    assert "pq" in payload["metrics"] and 0.0 <= payload["metrics"]["pq"] <= 1.0
    seg = Segmenter.from_checkpoint(checkpoint)
    assert seg.is_panoptic
    cloud = lidar_scan(seed=42)
    semantic, instance = seg.panoptic(cloud)
    assert semantic.shape == instance.shape == (len(cloud),) and instance.dtype == np.int64
    thing = np.isin(semantic, seg.model.things)
    assert (instance[~thing] == 0).all() and (instance[thing] > 0).all()
    again = seg.panoptic(cloud)
    np.testing.assert_array_equal(again[1], instance)  # deterministic
    # the same as the model run directly
    xyz = torch.from_numpy(cloud.xyz)
    feats = torch.from_numpy(np.column_stack([cloud.xyz, cloud.intensity]))
    sem2, inst2 = predict_panoptic(seg.model, xyz, feats, torch.tensor([len(cloud)]), (0,))
    np.testing.assert_array_equal(sem2.numpy(), semantic)
    np.testing.assert_array_equal(inst2.numpy(), instance)

    # pcseg segment --panoptic: .label files with the instance ids in the upper 16 bits
    scan = tmp_path / "scans" / "000000.bin"
    scan.parent.mkdir()
    np.column_stack([cloud.xyz, cloud.intensity]).astype("<f4").tofile(scan)
    out = tmp_path / "pred"
    assert main(["segment", "--checkpoint", str(checkpoint), str(scan), "--out", str(out), "--panoptic"]) == 0
    raw, inst = read_labels(out / "000000.label", return_instance=True)
    np.testing.assert_array_equal(raw, seg.label_map.to_raw(semantic))
    np.testing.assert_array_equal(inst, instance)
    # and pcseg score --panoptic scores it against the scan's exact instances
    gt = tmp_path / "gt" / "000000.label"
    gt.parent.mkdir()
    (cloud.labels.astype(np.uint32) | (cloud.instance.astype(np.uint32) << 16)).astype("<u4").tofile(gt)
    capsys.readouterr()
    assert main(["score", "--panoptic", str(out / "000000.label"), str(gt), "--out", str(tmp_path / "r")]) == 0
    assert "PQ" in capsys.readouterr().out

    assert main(["segment", "--checkpoint", str(checkpoint), str(scan), "--out", str(out), "--panoptic",
                 "--format", "npy"]) == 2
    assert "--format must be label" in capsys.readouterr().err


def test_eval_panoptic(checkpoint, tmp_path, capsys):
    import json

    config = tmp_path / "c.yaml"
    import yaml

    cfg = torch.load(checkpoint, weights_only=True)["config"]
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "m.json"
    assert main(["eval", str(config), "--checkpoint", str(checkpoint), "--panoptic", "--out", str(out)]) == 0
    assert "PQ-dagger" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert 0.0 <= report["panoptic"]["pq"] <= 1.0
    # the checkpoint's own validation PQ is the same split scored the same way
    assert report["panoptic"]["pq"] == pytest.approx(torch.load(checkpoint, weights_only=True)["metrics"]["pq"])


def test_segment_panoptic_needs_an_instance_head(tmp_path, capsys):
    from test_engine_support import toy_config, write_toy_kitti

    root = write_toy_kitti(tmp_path / "data", sequences=("00", "08"), scans=1, n=200)
    Trainer(toy_config(root, tmp_path / "run", epochs=1, batch_size=1), **QUIET).fit()
    scan = root / "sequences" / "08" / "velodyne" / "000000.bin"
    assert main(["segment", "--checkpoint", str(tmp_path / "run" / "last.pt"), str(scan), "--out",
                 str(tmp_path / "o"), "--panoptic"]) == 2
    assert "no instance head" in capsys.readouterr().err
