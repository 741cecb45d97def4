"""``.ply`` / ``.pcd`` through Open3D's tensor API, which keeps every per-point attribute.

open3d is imported here, inside the function, so ``import pcseg`` never loads it. Without open3d,
PLY files still load through a small numpy reader (:func:`read_ply_numpy`).
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
        if path.suffix.lower() == ".ply":
            return read_ply_numpy(path)  # machines without open3d (the GPU box) still read PLY
        raise PcsegValueError(
            f"{path}: reading {path.suffix} files needs open3d (pip install open3d); "
            "use .ply/.npy/.npz/.bin on machines without it"
        ) from None
    where = str(path)
    cloud = o3d.t.io.read_point_cloud(where)
    attributes = {key.lower(): cloud.point[key].numpy() for key in cloud.point}
    if "positions" not in attributes or len(attributes["positions"]) == 0:
        raise PointCloudFormatError(f"{where}: no points could be read (empty or not a valid {path.suffix} file)")
    xyz, offset = split_offset(attributes.pop("positions"))
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


# PLY scalar type names -> numpy dtypes (both spellings the format allows)
_PLY_DTYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def read_ply_numpy(path) -> PointCloud:
    """A PLY reader without open3d (for machines that lack it): the ``vertex`` element of ASCII or
    binary PLY files whose vertex properties are scalars (what :func:`write_points` writes and most
    point-cloud tools write). Elements after ``vertex`` are ignored; list properties are refused."""
    where = str(path)
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise PointCloudFormatError(f"{where}: not a PLY file (no 'ply' magic or 'end_header')")
    body_start = data.index(b"\n", end) + 1
    fmt, element, count, props, seen_vertex = None, None, 0, [], False
    for line in data[:end].decode("ascii", "replace").splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            element = words[1]
            if element == "vertex":
                count, seen_vertex = int(words[2]), True
            elif not seen_vertex:
                raise PointCloudFormatError(f"{where}: element {element!r} before 'vertex' is not supported")
        elif words[0] == "property" and element == "vertex":
            if words[1] == "list" or words[1] not in _PLY_DTYPES:
                raise PointCloudFormatError(f"{where}: vertex property {' '.join(words[1:])!r} is not supported")
            props.append((words[2], _PLY_DTYPES[words[1]]))
    if not seen_vertex or count == 0:
        raise PointCloudFormatError(f"{where}: no points could be read (no or empty 'vertex' element)")
    if fmt == "ascii":
        rows = data[body_start:].split(b"\n")[:count]
        table = np.array([row.split() for row in rows], dtype=np.float64)
        if table.shape != (count, len(props)):
            raise PointCloudFormatError(f"{where}: expected {count} vertex rows of {len(props)} values")
        columns = {name: table[:, i] for i, (name, _) in enumerate(props)}
    elif fmt in ("binary_little_endian", "binary_big_endian"):
        order = "<" if fmt == "binary_little_endian" else ">"
        dtype = np.dtype([(name, order + code) for name, code in props])
        if len(data) - body_start < count * dtype.itemsize:
            raise PointCloudFormatError(f"{where}: file ends before its {count} vertices")
        records = np.frombuffer(data, dtype=dtype, count=count, offset=body_start)
        columns = {name: records[name] for name, _ in props}
    else:
        raise PointCloudFormatError(f"{where}: unknown PLY format {fmt!r}")
    lower = {name.lower(): values for name, values in columns.items()}
    if not {"x", "y", "z"} <= set(lower):
        raise PointCloudFormatError(f"{where}: vertex element lacks x, y, z")
    xyz, offset = split_offset(np.stack([lower["x"], lower["y"], lower["z"]], axis=1))
    kwargs: dict = {"xyz": xyz, "offset": offset, "source": where}
    for names, field in ((("red", "green", "blue"), "rgb"), (("nx", "ny", "nz"), "normals")):
        if set(names) <= set(lower):
            stacked = np.stack([lower[n] for n in names], axis=1)
            kwargs[field] = scale_colors(stacked, where) if field == "rgb" else stacked
    for field, names in (("intensity", _INTENSITY), ("labels", _LABELS), ("instance", _INSTANCE)):
        name = next((nm for nm in names if nm in lower), None)
        if name is not None:
            kwargs[field] = lower[name] if field == "intensity" else lower[name].astype(np.int64)
    return PointCloud(**kwargs)
