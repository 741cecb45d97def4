"""``.las`` / ``.laz`` through laspy: scaled coordinates, intensity, RGB, classification."""

from __future__ import annotations

import numpy as np

from pcseg.errors import PcsegValueError, PointCloudFormatError
from pcseg.io._common import scale_colors
from pcseg.io.pointcloud import PointCloud


def read_las(path, las_fields=None) -> PointCloud:
    """Read an airborne/terrestrial LiDAR tile.

    Coordinates are the scaled integers of the file (``X * scale + offset``) computed in float64;
    the cloud keeps a whole-metre float64 ``offset`` and float32 local ``xyz`` so world
    coordinates come back to well under a millimetre (``cloud.world_xyz()``). ``intensity`` is the
    raw 16-bit value; ``rgb`` (point formats with colour) is scaled from 16 bits to [0, 1];
    ``labels`` are the ASPRS ``classification`` codes (use ``LabelMap.builtin('asprs')``).

    Args:
        las_fields: LAS dimension names that must exist (e.g. ``["red"]`` or
            ``["classification"]``); a missing one raises PointCloudFormatError naming it.
    """
    try:
        import laspy
    except ImportError:
        raise PcsegValueError(f"{path}: reading LAS files needs laspy (pip install laspy)") from None
    where = str(path)
    try:
        las = laspy.read(where)
    except Exception as exc:  # laspy raises its own LaspyException and plain errors for bad files
        raise PointCloudFormatError(f"{where}: not a readable LAS/LAZ file ({exc})") from None
    dims = set(las.point_format.dimension_names)
    for name in las_fields or ():
        if name not in dims:
            raise PointCloudFormatError(
                f"{where}: LAS point format {las.point_format.id} has no field {name!r}; "
                f"it has {sorted(dims)}"
            )
    header = las.header
    scales = np.asarray(header.scales, dtype=np.float64)
    offsets = np.asarray(header.offsets, dtype=np.float64)
    ints = np.stack([np.asarray(las.X), np.asarray(las.Y), np.asarray(las.Z)], axis=1).astype(np.int64)
    if len(ints) == 0:
        raise PointCloudFormatError(f"{where}: the cloud is empty (0 points)")
    # local = (X - Xmin) * scale + (offset + Xmin * scale - floor): small numbers, exact offset
    world_min = ints.min(axis=0) * scales + offsets
    offset = np.floor(world_min)
    xyz = ((ints - ints.min(axis=0)) * scales + (world_min - offset)).astype(np.float32)
    kwargs: dict = {"xyz": xyz, "offset": offset, "source": where}
    if "intensity" in dims:
        kwargs["intensity"] = np.asarray(las.intensity, dtype=np.float32)
    if {"red", "green", "blue"} <= dims:
        rgb = np.stack([np.asarray(las.red), np.asarray(las.green), np.asarray(las.blue)], axis=1)
        kwargs["rgb"] = (rgb.astype(np.float64) / 65535.0).astype(np.float32) if rgb.max() > 255 else scale_colors(rgb, where)
    if "classification" in dims:
        kwargs["labels"] = np.asarray(las.classification, dtype=np.int64)
    return PointCloud(**kwargs)
