"""Per-point label files: SemanticKITTI ``.label`` (uint32) and label arrays in ``.npy``/``.bin``.

A SemanticKITTI ``.label`` holds one little-endian uint32 per point: the lower 16 bits are the
raw semantic id, the upper 16 bits the instance id.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcseg.errors import PcsegValueError, PointCloudFormatError
from pcseg.atomic import atomic_path
from pcseg.io._common import existing_file

_UINT16_MAX = 0xFFFF


def kitti_label_path(points_path) -> Path | None:
    """The label file of a scan in the SemanticKITTI layout, when it exists:
    ``.../velodyne/NNNNNN.bin`` -> ``.../labels/NNNNNN.label``; None otherwise."""
    path = Path(points_path)
    if path.parent.name == "velodyne":
        candidate = path.parent.parent / "labels" / (path.stem + ".label")
        if candidate.is_file():
            return candidate
    return None


def read_labels(path, return_instance: bool = False, num_points: int | None = None):
    """Read per-point labels.

    Args:
        path: ``.label`` (SemanticKITTI uint32), ``.npy`` (any integer array of N values, e.g.
            Open3D-ML's int32 (N, 1)), or ``.bin`` holding int64 values (mmdetection3d's S3DIS
            ``*_semantic.bin``/``*_instance.bin``).
        return_instance: also return the instance ids (``.label`` only; other formats give zeros).
        num_points: when given, the label count must equal it (the cloud's point count).

    Returns:
        int64 (N,) semantic ids as stored (raw ids), or ``(semantic, instance)`` int64 (N,) each.
    """
    path = existing_file(path, "label file")
    suffix = path.suffix.lower()
    instance = None
    if suffix == ".label":
        size = path.stat().st_size
        if size % 4:
            raise PointCloudFormatError(
                f"{path}: size {size} bytes is not a whole number of uint32 labels (4 bytes each)"
            )
        packed = np.fromfile(path, dtype="<u4")
        semantic = (packed & _UINT16_MAX).astype(np.int64)
        instance = (packed >> 16).astype(np.int64)
    elif suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise PointCloudFormatError(f"{path}: not a readable .npy array ({exc})") from None
        semantic = _integer_column(values, path)
    elif suffix == ".bin":
        size = path.stat().st_size
        if size % 8:
            raise PointCloudFormatError(f"{path}: size {size} bytes is not a whole number of int64 labels")
        semantic = np.fromfile(path, dtype="<i8")
    else:
        raise PointCloudFormatError(f"{path}: unknown label file suffix {path.suffix!r} (use .label, .npy or .bin)")
    if num_points is not None and len(semantic) != num_points:
        raise PointCloudFormatError(
            f"{path}: {len(semantic)} labels but the point cloud has {num_points} points"
        )
    if return_instance:
        return semantic, (instance if instance is not None else np.zeros_like(semantic))
    return semantic


def write_labels(path, semantic, instance=None) -> Path:
    """Write a SemanticKITTI ``.label`` file atomically (or a ``.npy`` int64 array).

    Args:
        path: destination; ``.label`` packs uint32 ``semantic | instance << 16``; ``.npy`` saves
            the semantic ids as int64 (N,) (instance ids are not kept there).
        semantic: integer (N,) raw ids in 0..65535 for ``.label``.
        instance: integer (N,) instance ids in 0..65535, or None (zeros).

    Returns the path written. ``read_labels`` gives back exactly the same ids.
    """
    path = Path(path)
    semantic = np.asarray(semantic)
    if semantic.dtype.kind not in "iu":
        raise PcsegValueError(f"write_labels({path}): semantic ids must be integers, got dtype {semantic.dtype}")
    semantic = semantic.reshape(-1).astype(np.int64)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, semantic)
        return path
    if suffix != ".label":
        raise PcsegValueError(f"write_labels({path}): unknown suffix {path.suffix!r} (use .label or .npy)")
    if instance is None:
        instance = np.zeros_like(semantic)
    instance = np.asarray(instance)
    if instance.dtype.kind not in "iu":
        raise PcsegValueError(f"write_labels({path}): instance ids must be integers, got dtype {instance.dtype}")
    instance = instance.reshape(-1).astype(np.int64)
    if len(instance) != len(semantic):
        raise PcsegValueError(
            f"write_labels({path}): {len(semantic)} semantic ids but {len(instance)} instance ids"
        )
    for name, values in (("semantic", semantic), ("instance", instance)):
        if values.size and (values.min() < 0 or values.max() > _UINT16_MAX):
            raise PcsegValueError(
                f"write_labels({path}): {name} ids must fit in 16 bits (0..65535), "
                f"got range {values.min()}..{values.max()}"
            )
    packed = (semantic.astype(np.uint32) | (instance.astype(np.uint32) << 16)).astype("<u4")
    with atomic_path(path) as tmp:
        packed.tofile(tmp)
    return path


def _integer_column(values: np.ndarray, path) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise PointCloudFormatError(f"{path}: labels must have shape (N,) or (N, 1), got {values.shape}")
    if values.dtype.kind not in "iu":
        if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
            return values.astype(np.int64)
        raise PointCloudFormatError(f"{path}: labels must be integers, got dtype {values.dtype}")
    return values.astype(np.int64)
