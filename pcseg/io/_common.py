"""Helpers shared by the readers and writers: atomic writes, path checks, cleaning."""

from __future__ import annotations

from pathlib import Path

import numpy as np


from pcseg.errors import ConfigError, PcsegFileNotFoundError, PointCloudFormatError


def read_yaml_mapping(path, what: str) -> dict:
    """Parse the YAML file ``path`` whose top level must be a mapping (a config, a label map).

    :class:`PcsegFileNotFoundError` when it is missing, :class:`ConfigError` naming ``what`` and
    the file when it is not valid YAML or not a mapping.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise PcsegFileNotFoundError(f"{what} file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a mapping at the top level")
    return data


def existing_file(path, what: str = "point cloud file") -> Path:
    """``path`` as a Path; :class:`PcsegFileNotFoundError` when it is missing or a folder."""
    p = Path(path)
    if not p.exists():
        raise PcsegFileNotFoundError(f"{what} not found: {p}")
    if not p.is_file():
        raise PointCloudFormatError(f"{p}: is a folder, expected a {what}")
    return p


def check_points(cloud, drop_invalid: bool = False):
    """Reject empty clouds and NaN/Inf coordinates (or drop those points when asked).

    Returns the cloud, possibly with the invalid points removed.
    """
    where = cloud.source or "point cloud"
    if len(cloud) == 0:
        raise PointCloudFormatError(f"{where}: the cloud is empty (0 points)")
    finite = np.isfinite(cloud.xyz).all(axis=1)
    bad = int(len(finite) - finite.sum())
    if bad:
        if not drop_invalid:
            raise PointCloudFormatError(
                f"{where}: {bad} of {len(cloud)} points have NaN/Inf coordinates "
                "(pass drop_invalid=True to drop them)"
            )
        cloud = cloud.select(finite)
        if len(cloud) == 0:
            raise PointCloudFormatError(f"{where}: every point has NaN/Inf coordinates")
    return cloud


def split_offset(xyz) -> tuple[np.ndarray, np.ndarray]:
    """Split world coordinates (N, 3), any float dtype, into float32 local ones and a float64 offset.

    The offset is the bounding-box minimum rounded down to whole metres, so local coordinates
    stay small (float32 keeps sub-millimetre steps within a few km) and the offset is exact.
    Clouds already near the origin (|coord| < 1 km) keep a zero offset. NaN/Inf rows are ignored
    here (the readers report them afterwards).
    """
    xyz = np.asarray(xyz)
    if len(xyz) == 0:
        return xyz.astype(np.float32), np.zeros(3, dtype=np.float64)
    lo, hi = np.fmin.reduce(xyz, axis=0), np.fmax.reduce(xyz, axis=0)  # fmin/fmax skip NaN
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        finite = xyz[np.isfinite(xyz).all(axis=1)]
        if len(finite) == 0:
            return xyz.astype(np.float32), np.zeros(3, dtype=np.float64)
        lo, hi = finite.min(axis=0), finite.max(axis=0)
    if max(np.abs(lo).max(), np.abs(hi).max()) < 1000.0:
        return xyz.astype(np.float32, copy=False), np.zeros(3, dtype=np.float64)
    offset = np.floor(lo.astype(np.float64))
    return (xyz.astype(np.float64) - offset).astype(np.float32), offset


def scale_colors(values: np.ndarray, where: str) -> np.ndarray:
    """Colour values to float32 in [0, 1]: floats already <= 1 stay, 8-bit and 16-bit are scaled."""
    values = np.asarray(values)
    if values.size == 0:
        return values.astype(np.float32)
    top = float(np.nanmax(values))
    if values.dtype.kind == "f" and top <= 1.0:
        scale = 1.0
    elif top <= 255:
        scale = 255.0
    elif top <= 65535:
        scale = 65535.0
    else:
        raise PointCloudFormatError(f"{where}: colour values up to {top} are not 8-bit or 16-bit")
    if values.min() < 0:
        raise PointCloudFormatError(f"{where}: negative colour values")
    return (values.astype(np.float64) / scale).astype(np.float32)
