"""pcseg: 3D point-cloud semantic segmentation for LiDAR and depth-sensor scans.

``import pcseg`` is light: it imports neither open3d nor anything that initialises CUDA.
The names below are resolved on first access (PEP 562), so each submodule loads when used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "PointCloud": "pcseg.io",
    "read_points": "pcseg.io",
    "read_labels": "pcseg.io",
    "write_labels": "pcseg.io",
    "write_points": "pcseg.io",
    "read_depth": "pcseg.io",
    "LabelMap": "pcseg.io",
    "ConfusionMatrix": "pcseg.metrics",
    "Segmenter": "pcseg.engine.segmenter",
    "PcsegError": "pcseg.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pcseg' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
