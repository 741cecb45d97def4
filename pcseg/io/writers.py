"""``write_points``: a (labeled) cloud to ``.ply``, ``.npy``, ``.npz`` or KITTI ``.bin``.

Every writer is atomic (temporary file, then ``os.replace``) and needs neither open3d nor torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.atomic import atomic_path
from pcseg.io.pointcloud import PointCloud


def write_points(path, cloud: PointCloud, *, labels=None, label_map=None, ascii: bool = False) -> Path:
    """Write ``cloud`` (and optional labels) to ``path``; the suffix picks the format.

    Args:
        path: ``.ply`` (binary little-endian, or ASCII with ``ascii=True``): vertex properties
            x y z (float32, or float64 when the cloud has a non-zero offset so world coordinates
            keep their precision), intensity, red green blue (uchar), nx ny nz, label, instance
            (int32). ``.npy``: one structured array with the same field names. ``.npz``: named
            arrays ``xyz``, ``offset``, ``intensity``, ``rgb``, ``normals``, ``labels``,
            ``instance`` (lossless). ``.bin``: KITTI float32 x, y, z, intensity (zeros when absent),
            world coordinates; labels go to a ``.label`` file via ``write_labels``.
        cloud: the points.
        labels: int (N,) ids to store instead of ``cloud.labels`` (e.g. predictions).
        label_map: a :class:`LabelMap`; when given, points are coloured by class (the labels are
            raw ids, mapped with ``to_train``) and those colours replace ``cloud.rgb``.

    Returns the path written.
    """
    path = Path(path)
    if not isinstance(cloud, PointCloud):
        raise PcsegValueError(f"write_points({path}): expected a PointCloud, got {type(cloud).__name__}")
    columns, rgb, labels = _columns(cloud, labels, label_map, path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".ply":
            _write_ply(tmp, columns, ascii=ascii)
        elif suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, _structured(columns))
        elif suffix == ".npz":
            with open(tmp, "wb") as fh:
                np.savez(fh, **_named(cloud, rgb, labels))
        elif suffix == ".bin":
            world = cloud.world_xyz().astype(np.float32)
            intensity = cloud.intensity if cloud.intensity is not None else np.zeros(len(cloud), np.float32)
            np.concatenate([world, intensity[:, None]], axis=1).astype("<f4").tofile(tmp)
        else:
            raise PcsegValueError(f"write_points({path}): unknown suffix {path.suffix!r} (use .ply, .npy, .npz, .bin)")
    return path


def _columns(cloud: PointCloud, labels, label_map, path):
    """(name, 1-D column) pairs in file order, plus the float rgb and int64 labels used."""
    n = len(cloud)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu" or labels.shape != (n,):
            raise PcsegValueError(
                f"write_points({path}): labels must be integer (N,) = ({n},), got {labels.dtype} {labels.shape}"
            )
        labels = labels.astype(np.int64)
    else:
        labels = cloud.labels
    rgb = cloud.rgb
    if label_map is not None:
        if labels is None:
            raise PcsegValueError(f"write_points({path}): label_map given but the cloud has no labels")
        rgb = label_map.colors[label_map.to_train(labels)].astype(np.float32) / 255.0

    geo = bool(np.any(cloud.offset != 0))
    xyz = cloud.world_xyz() if geo else cloud.xyz
    cols = [("x", xyz[:, 0]), ("y", xyz[:, 1]), ("z", xyz[:, 2])]
    if cloud.intensity is not None:
        cols.append(("intensity", cloud.intensity.astype(np.float32)))
    if rgb is not None:
        rgb8 = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
        cols += [("red", rgb8[:, 0]), ("green", rgb8[:, 1]), ("blue", rgb8[:, 2])]
    if cloud.normals is not None:
        cols += [(name, cloud.normals[:, i]) for i, name in enumerate(("nx", "ny", "nz"))]
    for name, ids in (("label", labels), ("instance", cloud.instance)):
        if ids is None:
            continue
        if ids.size and (ids.min() < np.iinfo(np.int32).min or ids.max() > np.iinfo(np.int32).max):
            raise PcsegValueError(f"write_points({path}): {name} ids do not fit in int32")
        cols.append((name, ids.astype(np.int32)))
    return cols, rgb, labels


_PLY_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
              np.dtype(np.uint8): "uchar", np.dtype(np.int32): "int"}


def _write_ply(tmp, columns, ascii: bool) -> None:
    n = len(columns[0][1])
    header = ["ply", f"format {'ascii' if ascii else 'binary_little_endian'} 1.0",
              "comment written by pcseg", f"element vertex {n}"]
    header += [f"property {_PLY_TYPES[col.dtype]} {name}" for name, col in columns]
    header.append("end_header")
    with open(tmp, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        if ascii:
            fmt = " ".join("%d" if col.dtype.kind in "iu" else "%.9g" for _, col in columns)
            table = np.empty((n, len(columns)), dtype=object)
            for i, (_, col) in enumerate(columns):
                table[:, i] = col
            np.savetxt(fh, table, fmt=fmt)
        else:
            fh.write(_structured(columns, little_endian=True).tobytes())


def _structured(columns, little_endian: bool = False) -> np.ndarray:
    order = "<" if little_endian else "="
    dtype = np.dtype([(name, col.dtype.newbyteorder(order)) for name, col in columns])
    out = np.empty(len(columns[0][1]), dtype=dtype)
    for name, col in columns:
        out[name] = col
    return out


def _named(cloud: PointCloud, rgb, labels) -> dict[str, np.ndarray]:
    out = {"xyz": cloud.xyz, "offset": cloud.offset}
    if cloud.intensity is not None:
        out["intensity"] = cloud.intensity
    if rgb is not None:
        out["rgb"] = rgb
    if cloud.normals is not None:
        out["normals"] = cloud.normals
    if labels is not None:
        out["labels"] = labels
    if cloud.instance is not None:
        out["instance"] = cloud.instance
    if cloud.pixels is not None:
        out["pixels"] = cloud.pixels
    return out
