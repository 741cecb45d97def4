"""Stand-ins shared by the engine tests: a tiny per-point model following the model protocol and
a generator of small labelled scans in the SemanticKITTI layout (independent of pcseg.synth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

# raw SemanticKITTI ids used by the toy scenes: road, car, building, vegetation, unlabeled
ROAD, CAR, BUILDING, VEGETATION, UNLABELED = 40, 10, 50, 70, 0


class PointMLP(nn.Module):
    """Per-point MLP with a per-cloud max-pooled context vector (a one-level PointNet)."""

    def __init__(self, num_classes: int, in_channels: int, hidden: int = 32, context: bool = True):
        super().__init__()
        self.context = context
        self.num_classes, self.in_channels = num_classes, in_channels
        self.local = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward_ragged(self, xyz, feats, offsets):
        # metres -> tens of metres so coordinates do not swamp intensity in [0, 1]
        h = self.local(torch.cat([feats[:, :3] / 10.0, feats[:, 3:]], dim=1))
        if not self.context:  # purely per-point: each point's logits depend on that point only
            return self.head(torch.cat([h, torch.zeros_like(h)], dim=1))
        starts = torch.cat([offsets.new_zeros(1), offsets[:-1]])
        context = torch.cat([h[s:e].max(0, keepdim=True).values.expand(e - s, -1)
                             for s, e in zip(starts.tolist(), offsets.tolist())])
        return self.head(torch.cat([h, context], dim=1))


def toy_scan(seed: int, n: int = 1500):
    """float32 (n, 4) x, y, z, intensity and int64 (n,) raw labels of a simple street scene."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice([ROAD, CAR, BUILDING, VEGETATION, UNLABELED], size=n, p=[0.4, 0.15, 0.25, 0.15, 0.05])
    xyz = np.zeros((n, 3), np.float32)
    xyz[:, 0] = rng.uniform(-20, 20, n)
    xyz[:, 1] = rng.uniform(-20, 20, n)
    xyz[:, 2] = -1.7 + rng.normal(0, 0.03, n)
    car = kinds == CAR
    xyz[car, 2] = rng.uniform(-1.5, 0.0, car.sum())
    building = kinds == BUILDING
    xyz[building, 0] = np.sign(xyz[building, 0]) * rng.uniform(15, 20, building.sum())
    xyz[building, 2] = rng.uniform(-1.5, 6.0, building.sum())
    veg = kinds == VEGETATION
    xyz[veg, 2] = rng.uniform(1.0, 4.0, veg.sum())
    intensity = np.select([kinds == ROAD, car, building, veg], [0.2, 0.9, 0.5, 0.05], 0.3).astype(np.float32)
    intensity += rng.normal(0, 0.02, n).astype(np.float32)
    return np.column_stack([xyz, intensity]).astype(np.float32), kinds.astype(np.int64)


def write_toy_kitti(root: Path, sequences=("00", "08"), scans=4, seed=0, n=1500) -> Path:
    """Write toy scans as ``root/sequences/SS/{velodyne,labels}``; returns ``root``."""
    for s, seq in enumerate(sequences):
        velo, labels = root / "sequences" / seq / "velodyne", root / "sequences" / seq / "labels"
        velo.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        for i in range(scans):
            points, raw = toy_scan(seed + 1000 * s + i, n)
            points.tofile(velo / f"{i:06d}.bin")
            raw.astype("<u4").tofile(labels / f"{i:06d}.label")
    return root


def toy_config(root: Path, out_dir: Path, **train) -> dict:
    """A validated config training :class:`PointMLP` on the toy dataset at ``root``."""
    from pcseg.engine.config import validate_config

    raw = {
        "dataset": {"name": "semantickitti", "root": str(root), "train_split": ["00"], "val_split": ["08"],
                    "features": ["xyz", "intensity"], "augment": {"rotate_z": False}},
        "model": {"name": "test_engine_support:PointMLP", "hidden": 32},
        "train": {"epochs": 2, "batch_size": 2, "lr": 0.01, "out_dir": str(out_dir), "progress": False,
                  "tensorboard": False, "seed": 3, "threads": 1, **train},
    }  # threads fixed: `auto` follows the machine's load, and bit-exact tests compare two runs
    return validate_config(raw, source="toy")
