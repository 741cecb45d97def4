"""Named per-point columns (as PLY and PCD files store them) -> :class:`PointCloud`.

Field names are matched case-insensitively, so PDAL's ``X Y Z Intensity Red Green Blue`` and
PCL's ``x y z intensity rgb`` read alike.
"""

from __future__ import annotations

import numpy as np

from pcseg.errors import PointCloudFormatError
from pcseg.io._common import scale_colors, split_offset
from pcseg.io.pointcloud import PointCloud

INTENSITY_NAMES = ("intensity", "scalar_intensity", "remission", "reflectance", "scalar_remission")
LABEL_NAMES = ("label", "labels", "scalar_label", "class", "semantic", "classification", "scalar_classification")
INSTANCE_NAMES = ("instance", "instances", "scalar_instance", "instance_id")
COLOR_NAMES = (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue"))
NORMAL_NAMES = (("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z"))


def cloud_from_fields(columns: dict, where: str, packed_rgb: np.ndarray | None = None) -> PointCloud:
    """Build a cloud from ``{field name: (N,) column}``.

    Args:
        columns: 1-D arrays of equal length N, any numeric dtype, named as in the file.
        where: the file, for error messages.
        packed_rgb: optional (N,) uint32 of PCL-packed colours ``0x00RRGGBB`` (PCD ``rgb``/``rgba``).

    Returns:
        PointCloud with float32 xyz (+ float64 offset), and rgb in [0, 1], normals, intensity,
        int64 labels / instance when such fields exist.

    Raises:
        PointCloudFormatError naming ``where`` when x, y or z is missing, or ids are not integers.
    """
    lower: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        lower.setdefault(str(name).lower(), values)
    missing = [axis for axis in ("x", "y", "z") if axis not in lower]
    if missing:
        raise PointCloudFormatError(
            f"{where}: no {', '.join(missing)} field (a point cloud needs x, y and z); "
            f"its fields are {list(columns)}"
        )
    stacked = np.stack([np.asarray(lower[a]) for a in ("x", "y", "z")], axis=1)
    xyz, offset = split_offset(stacked if stacked.dtype.kind == "f" else stacked.astype(np.float64))
    n = len(xyz)
    kwargs: dict = {"xyz": xyz, "offset": offset, "source": where}
    for names in COLOR_NAMES:
        if set(names) <= set(lower):
            kwargs["rgb"] = scale_colors(np.stack([lower[c] for c in names], axis=1), where)
            break
    else:
        if packed_rgb is not None:
            packed = np.asarray(packed_rgb, dtype=np.uint32)
            rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1)
            kwargs["rgb"] = (rgb.astype(np.float32) / 255.0)
    for names in NORMAL_NAMES:
        if set(names) <= set(lower):
            kwargs["normals"] = np.stack([lower[c] for c in names], axis=1).astype(np.float32)
            break
    for field, names in (("intensity", INTENSITY_NAMES), ("labels", LABEL_NAMES), ("instance", INSTANCE_NAMES)):
        name = next((nm for nm in names if nm in lower), None)
        if name is None:
            continue
        values = np.asarray(lower[name]).reshape(n)
        if field != "intensity":
            if values.dtype.kind == "f" and not (np.isfinite(values).all() and np.all(values == np.round(values))):
                raise PointCloudFormatError(f"{where}: field {name!r} holds non-integer values")
            values = values.astype(np.int64)
        kwargs[field] = values
    return PointCloud(**kwargs)
