"""Checkpoints bundled with pcseg.

- ``outdoor`` (the default of ``pcseg demo``): MinkUNet for street LiDAR scans, SemanticKITTI's
  19 classes, xyz input (works with or without intensity); trained on the six real SemanticKITTI
  frames of the project's shared data plus generated scans, so its weights carry the
  CC BY-NC-SA 4.0 licence of SemanticKITTI (non-commercial).
- ``outdoor_synthetic``: the same network trained on generated street scans only (the synthetic
  pretraining the ``outdoor`` model starts from): less accurate on real scans, but its weights
  carry no licence of real data (docs/outdoor.md).
- ``realtime``: FastVoxelNet, the real-time street-scan model (a full 120k-point HDL-64 scan in
  ~65 ms of CPU on one thread), same classes, input and training data as ``outdoor`` (so the same
  CC BY-NC-SA 4.0 licence), less accurate (docs/models.md).
- ``airborne``: MinkUNet for airborne LAS/LAZ tiles, ASPRS classes (docs/airborne.md).
- ``indoor``: MinkUNet for whole indoor rooms, ScanNet's 20 classes, xyz + rgb (also without
  colour: trained with colour dropout); trained on generated rooms only (docs/indoor.md).
- ``panoptic``: PanopticMinkUNet (classes + instances, ``Segmenter.panoptic``) trained on generated
  scans plus the one real SemanticKITTI scan with instance ids of the shared data, so its weights
  carry SemanticKITTI's CC BY-NC-SA 4.0 licence (non-commercial; docs/panoptic.md).
- ``minkunet``, ``pointnet2``: small demo models trained on pcseg's synthetic scans only.

They are small (under 20 MB), carry their config and label map, and each is reproduced by
``pcseg train`` with the config named in :data:`BUNDLED`, then
``pcseg.engine.checkpoint.export_for_inference``.
"""

from __future__ import annotations

from pathlib import Path

from pcseg.errors import PcsegValueError
from pcseg.resources import package_file

PRETRAINED_DIR = package_file("pretrained")

# model name -> (checkpoint file in this folder, the config that trains it, the scans it labels:
# "street" vehicle LiDAR, "airborne" tiles, "indoor" rooms)
BUNDLED = {
    "outdoor": ("outdoor_minkunet.pt", "configs/outdoor_minkunet_finetune.yaml", "street"),  # after outdoor_synthetic
    "outdoor_synthetic": ("outdoor_minkunet_synthetic.pt", "configs/outdoor_minkunet_pretrain3.yaml", "street"),
    "realtime": ("realtime_fastvoxelnet.pt", "configs/realtime_fastvoxelnet.yaml", "street"),  # FastVoxelNet
    "minkunet": ("minkunet_synthetic.pt", "configs/synthetic_minkunet.yaml", "street"),
    "pointnet2": ("pointnet2_synthetic.pt", "configs/synthetic_pointnet2.yaml", "street"),
    "airborne": ("minkunet_airborne.pt", "configs/airborne_minkunet.yaml", "airborne"),  # ASPRS classes
    "panoptic": ("panoptic_minkunet.pt", "configs/panoptic_minkunet.yaml", "street"),  # after synthetic_panoptic.yaml
    "indoor": ("indoor_minkunet.pt", "configs/indoor_minkunet_stage4.yaml", "indoor"),  # ScanNet's 20 classes
}
DEFAULT_MODEL = "outdoor"


def checkpoint_path(name: str) -> Path:
    """Path of the bundled checkpoint ``name`` (a key of :data:`BUNDLED`, e.g. ``outdoor``)."""
    if name not in BUNDLED:
        raise PcsegValueError(f"model must be one of {sorted(BUNDLED)}, got {name!r}")
    filename, config, _ = BUNDLED[name]
    path = PRETRAINED_DIR / filename
    if not path.is_file():
        raise PcsegValueError(
            f"the bundled checkpoint {path.name} is missing from {PRETRAINED_DIR}; "
            f"train it with `pcseg train {config}`"
        )
    return path


def bundled_for(scans: str) -> list[str]:
    """Names of the bundled models that label ``scans`` ("street", "airborne" or "indoor")."""
    return [name for name, (_, _, kind) in BUNDLED.items() if kind == scans]
