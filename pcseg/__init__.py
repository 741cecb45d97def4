"""pcseg: 3D point-cloud semantic segmentation for LiDAR and depth-sensor scans.

``import pcseg`` is light: it imports neither open3d nor anything that initialises CUDA.
The names below are resolved on first access (PEP 562), so each submodule loads when used.
"""

from __future__ import annotations

from pcseg._lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
