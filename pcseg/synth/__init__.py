"""Synthetic data with exact labels: procedural scenes scanned by simulated sensors.

Outdoor: :func:`lidar_scan` (one scan of a random street, SemanticKITTI raw ids) and
:func:`write_dataset` (sequences in the SemanticKITTI layout). Indoor: :func:`depth_frame`
(a room seen by a 640x480 RGB-D camera) and :func:`write_depth_dataset`.
Only numpy is needed (PNG writing uses Pillow, imported when a writer runs); no open3d.
"""

from __future__ import annotations

import importlib

# public name -> module that defines it, loaded on first use
_LAZY = {
    "lidar_scan": "pcseg.synth.lidar",
    "SENSORS": "pcseg.synth.lidar",
    "write_dataset": "pcseg.synth.writer",
    "build_street": "pcseg.synth.street",
    "CLASS_NAMES": "pcseg.synth.street",
    "depth_frame": "pcseg.synth.indoor",
    "write_depth_dataset": "pcseg.synth.indoor_writer",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pcseg.synth' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
