"""``.ply`` reader in numpy: ASCII and binary (both byte orders), every scalar type name of the
PLY spec, field names in any case, list properties and elements before ``vertex`` skipped.

Open3D is not used: it reads a PLY without ``z`` as one point and raises a bare ``RuntimeError``
on some valid type names; this reader reports both as a :class:`PointCloudFormatError` naming
the file. Every count in the header is checked against the bytes the file holds before anything
is allocated, so a damaged header is refused quickly.
"""

from __future__ import annotations

import numpy as np

from pcseg.errors import PointCloudFormatError
from pcseg.io._fields import cloud_from_fields
from pcseg.io.pointcloud import PointCloud

# PLY scalar type names (both spellings of the spec) -> numpy type codes
PLY_DTYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_VERTEX_NAMES = ("vertex", "vertices", "point", "points")
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}


def read_ply(path) -> PointCloud:
    """Read the ``vertex`` element of a PLY file.

    Returns:
        PointCloud: float32 xyz (N, 3) with a float64 offset for georeferenced doubles, plus rgb
        (``red green blue``, scaled to [0, 1]), normals (``nx ny nz``), intensity, label and
        instance properties when present (names in any case).

    Raises:
        PointCloudFormatError naming the file for a malformed header, a body shorter than the
        header promises, a vertex element without x, y, z, or no vertices.
    """
    where = str(path)
    data = path.read_bytes()
    fmt, elements, body_start = _parse_header(data, where)
    vertex = next((i for i, (name, _, _) in enumerate(elements) if name.lower() in _VERTEX_NAMES), None)
    if vertex is None:
        raise PointCloudFormatError(f"{where}: no 'vertex' element in the PLY header")
    if elements[vertex][1] == 0:
        raise PointCloudFormatError(f"{where}: the cloud is empty (0 points)")
    if fmt == "ascii":
        columns = _read_ascii(data, body_start, elements, vertex, where)
    else:
        columns = _read_binary(data, body_start, elements, vertex, _FORMATS[fmt], where)
    return cloud_from_fields(columns, where)


def _parse_header(data: bytes, where: str):
    """(format, [(element, count, [(prop, type code, list count code or None)]), body offset)."""
    if not data.startswith(b"ply"):
        raise PointCloudFormatError(f"{where}: not a PLY file (it does not start with 'ply')")
    end = data.find(b"end_header")
    newline = data.find(b"\n", end) if end >= 0 else -1
    if newline < 0:
        raise PointCloudFormatError(f"{where}: PLY header has no 'end_header' line")
    fmt, elements = None, []
    for number, raw in enumerate(data[:end].split(b"\n")[1:], start=2):
        words = raw.decode("ascii", "replace").split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        bad = f"{where}: PLY header line {number} {' '.join(words)[:80]!r}"
        if words[0] == "format":
            if len(words) < 2 or words[1] not in _FORMATS:
                raise PointCloudFormatError(f"{bad}: format must be one of {list(_FORMATS)}")
            fmt = words[1]
        elif words[0] == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise PointCloudFormatError(f"{bad}: expected 'element <name> <count>'")
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property":
            if not elements:
                raise PointCloudFormatError(f"{bad}: property before any element")
            if len(words) == 5 and words[1] == "list" and words[2] in PLY_DTYPES and words[3] in PLY_DTYPES:
                if PLY_DTYPES[words[2]][0] == "f":
                    raise PointCloudFormatError(f"{bad}: a list count must have an integer type")
                elements[-1][2].append((words[4], PLY_DTYPES[words[3]], PLY_DTYPES[words[2]]))
            elif len(words) == 3 and words[1] in PLY_DTYPES:
                elements[-1][2].append((words[2], PLY_DTYPES[words[1]], None))
            else:
                raise PointCloudFormatError(
                    f"{bad}: unknown property type; PLY types are {', '.join(PLY_DTYPES)} (or list)"
                )
        else:
            raise PointCloudFormatError(f"{bad}: unknown header keyword {words[0]!r}")
    if fmt is None:
        raise PointCloudFormatError(f"{where}: PLY header has no 'format' line")
    return fmt, elements, newline + 1


# --------------------------------------------------------------------------- ASCII
def _read_ascii(data, start, elements, vertex, where) -> dict:
    lines = [line for line in data[start:].split(b"\n") if line.strip()]
    first = sum(count for _, count, _ in elements[:vertex])
    name, count, props = elements[vertex]
    rows = lines[first:first + count]
    if len(rows) < count:
        raise PointCloudFormatError(
            f"{where}: the header promises {count} vertices but only {len(rows)} vertex lines follow"
        )
    if any(kind is not None for _, _, kind in props):
        table = np.array([_ascii_row(row, props, where) for row in rows], dtype=np.float64)
        names = [p for p, _, kind in props if kind is None]
    else:
        try:
            table = np.array(b" ".join(rows).split(), dtype=np.float64)
        except ValueError:
            raise PointCloudFormatError(f"{where}: a vertex line holds something that is not a number") from None
        names = [p for p, _, _ in props]
        if table.size != count * len(props):
            raise PointCloudFormatError(
                f"{where}: {count} vertex lines of {len(props)} values expected, found {table.size} values"
            )
    table = table.reshape(count, len(names))
    return {nm: table[:, i] for i, nm in enumerate(names)}


def _ascii_row(row: bytes, props, where) -> list[float]:
    words, values, i = row.split(), [], 0
    try:
        for _, _, kind in props:
            if kind is None:
                values.append(float(words[i]))
                i += 1
            else:
                i += 1 + int(words[i])
    except (IndexError, ValueError):
        raise PointCloudFormatError(f"{where}: malformed vertex line {row[:80]!r}") from None
    if i != len(words):
        raise PointCloudFormatError(f"{where}: vertex line {row[:80]!r} has {len(words)} values, expected {i}")
    return values


# --------------------------------------------------------------------------- binary
def _read_binary(data, pos, elements, vertex, order, where) -> dict:
    for name, count, props in elements[:vertex]:
        pos = _walk(data, pos, count, props, order, where, name)[0]
    name, count, props = elements[vertex]
    if all(kind is None for _, _, kind in props):
        dtype = np.dtype([(p, order + code) for p, code, _ in props])
        if len(data) - pos < count * dtype.itemsize:
            raise PointCloudFormatError(
                f"{where}: the header promises {count} vertices ({count * dtype.itemsize} bytes) but the "
                f"file holds {len(data) - pos} bytes after its header"
            )
        records = np.frombuffer(data, dtype=dtype, count=count, offset=pos)
        return {p: records[p] for p, _, _ in props}
    return _walk(data, pos, count, props, order, where, name)[1]


def _walk(data, pos, count, props, order, where, name):
    """Step over ``count`` rows of an element with list properties; returns (end, scalar columns)."""
    scalars = [(p, np.dtype(order + code)) for p, code, kind in props if kind is None]
    if all(kind is None for _, _, kind in props):  # fixed-size rows: no loop
        size = sum(dt.itemsize for _, dt in scalars) * count
        if len(data) - pos < size:
            raise PointCloudFormatError(f"{where}: file ends inside element {name!r} ({count} rows)")
        return pos + size, {}
    if count > len(data) - pos:  # every row holds at least one byte
        raise PointCloudFormatError(f"{where}: element {name!r} promises {count} rows; the file is too short")
    out = {p: np.empty(count, dtype=dt) for p, dt in scalars}
    for row in range(count):
        for p, code, kind in props:
            if kind is None:
                dt = np.dtype(order + code)
                out[p][row] = _scalar(data, pos, dt, where, name)
                pos += dt.itemsize
            else:
                counter = np.dtype(order + kind)
                items = int(_scalar(data, pos, counter, where, name))
                if items < 0:
                    raise PointCloudFormatError(f"{where}: negative list length in element {name!r}")
                pos += counter.itemsize + items * np.dtype(code).itemsize
    if pos > len(data):
        raise PointCloudFormatError(f"{where}: file ends inside element {name!r}")
    return pos, out


def _scalar(data, pos, dtype, where, name):
    if pos + dtype.itemsize > len(data):
        raise PointCloudFormatError(f"{where}: file ends inside element {name!r}")
    return np.frombuffer(data, dtype=dtype, count=1, offset=pos)[0]
