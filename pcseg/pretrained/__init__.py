"""Checkpoints bundled with pcseg, trained on pcseg's synthetic LiDAR scans.

They are small (under 20 MB), carry their config, label map and measured mIoU, and are what
``pcseg demo`` uses. Reproduce them with ``pcseg train configs/synthetic_<model>.yaml``.
"""

from __future__ import annotations

from pathlib import Path

from pcseg.errors import PcsegValueError
from pcseg.resources import package_file

PRETRAINED_DIR = package_file("pretrained")

# model name -> checkpoint file in this folder
BUNDLED = {
    "minkunet": "minkunet_synthetic.pt",
    "pointnet2": "pointnet2_synthetic.pt",
    "airborne": "minkunet_airborne.pt",  # configs/airborne_minkunet.yaml, ASPRS classes
}


def checkpoint_path(name: str) -> Path:
    """Path of the bundled checkpoint ``name`` (``minkunet`` or ``pointnet2``)."""
    if name not in BUNDLED:
        raise PcsegValueError(f"model must be one of {sorted(BUNDLED)}, got {name!r}")
    path = PRETRAINED_DIR / BUNDLED[name]
    if not path.is_file():
        raise PcsegValueError(
            f"the bundled checkpoint {path.name} is missing from {PRETRAINED_DIR}; "
            f"train it with `pcseg train configs/synthetic_{name}.yaml`"
        )
    return path
