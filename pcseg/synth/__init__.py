"""Synthetic data with exact labels: procedural scenes scanned by simulated sensors.

Outdoor: :func:`lidar_scan` (one scan of a random street, SemanticKITTI raw ids) and
:func:`write_dataset` (sequences in the SemanticKITTI layout). Indoor: :func:`depth_frame`
(a room seen by a 640x480 RGB-D camera) and :func:`write_depth_dataset`.
Only numpy is needed (PNG writing uses Pillow, imported when a writer runs); no open3d.
"""

from __future__ import annotations

from pcseg._lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
