"""A model, a dataset and a loss added from this file alone, trained through the config.

Nothing in pcseg is edited or registered: the config names ``test_engine_plugins:ToyModel``
etc., each constructor's arguments are its config keys (checked against the signature).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcseg.datasets.base import ScanDataset
from pcseg.engine.config import validate_config
from pcseg.engine.trainer import Trainer
from pcseg.errors import ConfigError
from pcseg.io import PointCloud

CAR, ROAD = 1, 9  # SemanticKITTI train ids


class ToyModel(torch.nn.Module):
    """Per-point MLP: logits (N, num_classes) from feats (N, in_channels)."""

    def __init__(self, num_classes, in_channels, hidden=16):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.net = torch.nn.Sequential(torch.nn.Linear(in_channels, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, num_classes))

    def forward_ragged(self, xyz, feats, offsets):
        return self.net(feats)


class ToyDataset(ScanDataset):
    """Scans of uniform points in a cube; x > 0 is a car, x <= 0 road (train ids)."""

    def __init__(self, split, label_map, features, *, points_per_scan=200, half_width=2.0, **kwargs):
        super().__init__(label_map, features, **kwargs)
        self.points_per_scan, self.half_width = int(points_per_scan), float(half_width)
        self.items = list(range(int(split)))

    def load_cloud(self, index):
        rng = np.random.default_rng(1000 + index)
        xyz = rng.uniform(-self.half_width, self.half_width, (self.points_per_scan, 3)).astype(np.float32)
        labels = np.where(xyz[:, 0] > 0, CAR, ROAD).astype(np.int64)
        return PointCloud(xyz=xyz, labels=labels, source=f"toy {index}")


class ToyLoss:
    """Mean squared logit (a tiny regulariser), normalised per point."""

    calls = 0

    def __init__(self, scale=1.0):
        self.scale = scale

    def __call__(self, logits, targets, offsets):
        ToyLoss.calls += 1
        return self.scale * (logits ** 2).sum(), torch.tensor(float(logits.shape[0] * logits.shape[1]))


def _config(tmp_path, **dataset_extra):
    me = __name__
    return validate_config({
        "dataset": {"name": f"{me}:ToyDataset", "label_map": "semantickitti", "train_split": 6, "val_split": 2,
                    "features": ["xyz"], "points_per_scan": 300, **dataset_extra},
        "model": {"name": f"{me}:ToyModel", "hidden": 32},
        "train": {"epochs": 6, "batch_size": 2, "lr": 0.05, "scheduler": "none", "threads": 1, "progress": False,
                  "tensorboard": False, "out_dir": str(tmp_path / "run"), "device": "cpu",
                  "loss": {"ce": 1.0, f"{me}:ToyLoss": {"weight": 0.01, "scale": 2.0}}},
    })


def test_toy_model_and_dataset_train_from_a_config(tmp_path):
    config = _config(tmp_path)
    assert config["dataset"]["half_width"] == 2.0  # own key default filled in from the signature
    ToyLoss.calls = 0
    trainer = Trainer(config, log=lambda *a: None)
    assert isinstance(trainer.model, ToyModel) and trainer.model.net[0].out_features == 32
    assert isinstance(trainer.train_set, ToyDataset) and trainer.train_set.points_per_scan == 300
    metrics = trainer.fit()
    assert ToyLoss.calls == trainer.step == 6 * 3
    # the two classes are separable by x: a trained MLP gets both nearly right
    iou = np.array(metrics["iou"])
    assert iou[CAR] > 0.9 and iou[ROAD] > 0.9, iou[[CAR, ROAD]]
    assert (tmp_path / "run" / "best.pt").is_file()


def test_a_dataset_key_is_checked_against_the_constructor(tmp_path):
    with pytest.raises(ConfigError, match="points_per_scn"):
        _config(tmp_path, points_per_scn=10)
    with pytest.raises(ConfigError, match=r"unknown key model\.hiden"):
        config = _config(tmp_path)
        config["model"]["hiden"] = 3
        Trainer(config, log=lambda *a: None)


def test_loss_terms_and_their_aliases():
    from pcseg.engine.config import DEFAULTS, loss_terms

    train = dict(DEFAULTS["train"], lovasz_weight=0.0, ce_weight=2.0)
    assert loss_terms(train) == [("ce", 2.0, {})]  # list form: weights from <name>_weight, 0 dropped
    train["loss"] = {"lovasz": 0.5, "ce": {"weight": 1.0, "class_weights": "none"}}
    assert loss_terms(train) == [("lovasz", 0.5, {}), ("ce", 1.0, {"class_weights": "none"})]
    with pytest.raises(ConfigError, match="weight"):
        loss_terms(dict(train, loss={"ce": -1}))
    with pytest.raises(ConfigError, match="unknown loss"):
        from pcseg.engine.registry import resolve

        resolve("loss", "focal")
