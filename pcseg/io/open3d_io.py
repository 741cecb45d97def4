"""``.ply`` / ``.pcd`` through Open3D's tensor API, which keeps every per-point attribute.

open3d is imported here, inside the function, so ``import pcseg`` never loads it.
"""

from __future__ import annotations

import numpy as np

from pcseg.errors import PcsegValueError, PointCloudFormatError
from pcseg.io._common import scale_colors, split_offset
from pcseg.io.pointcloud import PointCloud

# attribute names (as Open3D reports them, lower-cased) -> PointCloud field
_INTENSITY = ("intensity", "scalar_intensity", "remission", "reflectance", "scalar_remission")
_LABELS = ("label", "labels", "scalar_label", "class", "semantic", "classification", "scalar_classification")
_INSTANCE = ("instance", "instances", "scalar_instance", "instance_id")


def read_open3d(path) -> PointCloud:
    """Read a PLY or PCD file: positions, colours (scaled to [0, 1]), normals, intensity, and
    integer ``label``/``instance`` attributes such as :func:`pcseg.io.write_points` writes.

    Double-precision positions (georeferenced PLY) keep their precision through ``offset``.
    """
    try:
        import open3d as o3d
    except ImportError:
        raise PcsegValueError(
            f"{path}: reading {path.suffix} files needs open3d (pip install open3d); "
            "use .npy/.npz/.bin on machines without it"
        ) from None
    where = str(path)
    cloud = o3d.t.io.read_point_cloud(where)
    attributes = {key.lower(): cloud.point[key].numpy() for key in cloud.point}
    if "positions" not in attributes or len(attributes["positions"]) == 0:
        raise PointCloudFormatError(f"{where}: no points could be read (empty or not a valid {path.suffix} file)")
    xyz, offset = split_offset(attributes.pop("positions").astype(np.float64))
    n = len(xyz)
    kwargs: dict = {"xyz": xyz, "offset": offset, "source": where}
    if "colors" in attributes:
        kwargs["rgb"] = scale_colors(attributes.pop("colors").reshape(n, 3), where)
    if "normals" in attributes:
        kwargs["normals"] = attributes.pop("normals").reshape(n, 3)
    for field, names in (("intensity", _INTENSITY), ("labels", _LABELS), ("instance", _INSTANCE)):
        name = next((nm for nm in names if nm in attributes), None)
        if name is None:
            continue
        values = attributes.pop(name).reshape(n, -1)[:, 0]
        if field != "intensity":
            if values.dtype.kind == "f" and not np.all(values == np.round(values)):
                raise PointCloudFormatError(f"{where}: attribute {name!r} holds non-integer values")
            values = values.astype(np.int64)
        kwargs[field] = values
    return PointCloud(**kwargs)
