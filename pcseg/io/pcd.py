"""``.pcd`` reader in numpy: ``DATA ascii`` (values separated by spaces, tabs or commas),
``binary`` and ``binary_compressed`` (LZF), field names in any case, PCL's packed ``rgb``/``rgba``.

Open3D is not used: it reads 0 points without an error from PCD files whose fields are upper
case (``FIELDS X Y Z``, as PDAL writes them) or whose ASCII values are comma or tab separated.
Header counts are checked against the file's size before anything is allocated.
"""

from __future__ import annotations

import numpy as np

from pcseg.errors import PointCloudFormatError
from pcseg.io._fields import cloud_from_fields
from pcseg.io.pointcloud import PointCloud

_TYPES = {("F", 4): "f4", ("F", 8): "f8", ("I", 1): "i1", ("I", 2): "i2", ("I", 4): "i4", ("I", 8): "i8",
          ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4", ("U", 8): "u8"}
_HEADER_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS", "DATA")


def read_pcd(path) -> PointCloud:
    """Read a PCL ``.pcd`` file (any version 0.5-0.7 header).

    Returns:
        PointCloud: float32 xyz (N, 3) (+ float64 offset), rgb in [0, 1] (from ``r g b`` fields
        or a packed ``rgb``/``rgba``), normals (``normal_x ...``), intensity, label, instance.

    Raises:
        PointCloudFormatError naming the file: malformed header, body shorter than ``POINTS``
        promises, corrupt compressed data, missing x/y/z, no points.
    """
    where = str(path)
    data = path.read_bytes()
    header, body = _parse_header(data, where)
    fields = header["FIELDS"]
    n = header["POINTS"]
    if n == 0:
        raise PointCloudFormatError(f"{where}: the cloud is empty (0 points)")
    dtype = np.dtype([(f"f{i}", "<" + code, (count,)) for i, (code, count) in
                      enumerate(zip(header["codes"], header["COUNT"]))])
    kind = header["DATA"]
    if kind == "ascii":
        table = _ascii_table(data[body:], n, sum(header["COUNT"]), where)
        starts = np.cumsum([0] + header["COUNT"][:-1])
        columns = {name: table[:, at] for name, at in zip(fields, starts)}
    elif kind == "binary":
        if len(data) - body < n * dtype.itemsize:
            raise PointCloudFormatError(
                f"{where}: POINTS {n} needs {n * dtype.itemsize} bytes of binary data, the file holds {len(data) - body}"
            )
        records = np.frombuffer(data, dtype=dtype, count=n, offset=body)
        columns = {name: records[f"f{i}"][:, 0] for i, name in enumerate(fields)}
    elif kind == "binary_compressed":
        raw = _decompress(data[body:], n * dtype.itemsize, where)
        columns, at = {}, 0
        for name, code, count in zip(fields, header["codes"], header["COUNT"]):  # one field after another
            width = np.dtype(code).itemsize * count
            columns[name] = np.frombuffer(raw, dtype="<" + code, count=n * count, offset=at).reshape(n, count)[:, 0]
            at += width * n
    else:
        raise PointCloudFormatError(f"{where}: DATA {kind!r} is not ascii, binary or binary_compressed")
    packed = None
    for name, code in zip(fields, header["codes"]):
        if name.lower() in ("rgb", "rgba") and name in columns:
            packed = _packed_colors(columns.pop(name), code)
    columns = {name: values for name, values in columns.items() if name != "_"}
    return cloud_from_fields(columns, where, packed_rgb=packed)


def _parse_header(data: bytes, where: str):
    """The header as a dict (FIELDS names, COUNT, codes, POINTS, DATA) and the body's offset."""
    header, pos = {}, 0
    while "DATA" not in header:
        end = data.find(b"\n", pos)
        if end < 0:
            raise PointCloudFormatError(f"{where}: not a PCD file (no DATA line in its header)")
        words = data[pos:end].decode("ascii", "replace").split()
        pos = end + 1
        if not words or words[0].startswith("#"):
            continue
        key = words[0].upper()
        if key not in _HEADER_KEYS:
            raise PointCloudFormatError(f"{where}: not a PCD file (unknown header line {' '.join(words)[:60]!r})")
        header[key] = words[1:]
    if "FIELDS" not in header:
        raise PointCloudFormatError(f"{where}: PCD header has no FIELDS line")
    fields = header["FIELDS"]
    k = len(fields)
    try:
        sizes = [int(v) for v in header.get("SIZE", ["4"] * k)]
        types = [v.upper() for v in header.get("TYPE", ["F"] * k)]
        counts = [int(v) for v in header.get("COUNT", ["1"] * k)]
        width = int(header.get("WIDTH", ["0"])[0])
        height = int(header.get("HEIGHT", ["1"])[0])
        points = int(header["POINTS"][0]) if "POINTS" in header else width * height
        kind = header["DATA"][0].lower()
    except (ValueError, IndexError):
        raise PointCloudFormatError(f"{where}: PCD header has a malformed SIZE/COUNT/WIDTH/HEIGHT/POINTS/DATA line") from None
    if not (len(sizes) == len(types) == len(counts) == k) or k == 0:
        raise PointCloudFormatError(
            f"{where}: PCD header lists {k} FIELDS but {len(sizes)} SIZE, {len(types)} TYPE, {len(counts)} COUNT"
        )
    codes = []
    for name, size, kind_code, count in zip(fields, sizes, types, counts):
        if (kind_code, size) not in _TYPES or not 1 <= count <= 4096:
            raise PointCloudFormatError(f"{where}: field {name!r} has TYPE {kind_code} SIZE {size} COUNT {count}, "
                                        "not a PCD scalar type")
        codes.append(_TYPES[(kind_code, size)])
    if points < 0 or points > len(data):  # every point takes at least one byte, even compressed
        raise PointCloudFormatError(f"{where}: POINTS {points} cannot fit in a file of {len(data)} bytes")
    return {"FIELDS": fields, "COUNT": counts, "codes": codes, "POINTS": points, "DATA": kind}, pos


def _ascii_table(body: bytes, n: int, width: int, where: str) -> np.ndarray:
    """(n, width) float64 values of an ASCII body; spaces, tabs and commas all separate values."""
    tokens = body.replace(b",", b" ").split()
    if len(tokens) < n * width:
        raise PointCloudFormatError(f"{where}: POINTS {n} x {width} values expected, the file holds {len(tokens)}")
    try:
        table = np.array(tokens[: n * width], dtype=np.float64)
    except ValueError:
        raise PointCloudFormatError(f"{where}: ASCII data holds something that is not a number") from None
    return table.reshape(n, width)


def _packed_colors(values: np.ndarray, code: str) -> np.ndarray:
    """PCL's packed colour 0x00RRGGBB as uint32 (N,): stored as the bits of a float32, or as an int."""
    if code == "f4":
        return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    values = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(values) & (values >= 0) & (values < 2**32)
    return np.where(valid, values, 0).astype(np.uint32)


def _decompress(blob: bytes, expected: int, where: str) -> bytes:
    """The LZF-compressed body of ``binary_compressed``: uint32 sizes, then the stream."""
    if len(blob) < 8:
        raise PointCloudFormatError(f"{where}: binary_compressed data is truncated")
    packed, unpacked = (int(v) for v in np.frombuffer(blob, dtype="<u4", count=2))
    if unpacked != expected or packed > len(blob) - 8:
        raise PointCloudFormatError(
            f"{where}: binary_compressed sizes ({packed} -> {unpacked} bytes) do not fit POINTS and the file"
        )
    out = lzf_decompress(blob[8:8 + packed], unpacked)
    if out is None:
        raise PointCloudFormatError(f"{where}: binary_compressed data is corrupt (LZF stream does not decode)")
    return out


def lzf_decompress(src: bytes, size: int) -> bytes | None:
    """Decode an LZF stream of exactly ``size`` output bytes; None when the stream is corrupt."""
    out = bytearray()
    i, n = 0, len(src)
    while i < n:
        ctrl = src[i]
        i += 1
        if ctrl < 32:  # literal run of ctrl + 1 bytes
            run = ctrl + 1
            if i + run > n or len(out) + run > size:
                return None
            out += src[i:i + run]
            i += run
            continue
        length = ctrl >> 5
        if length == 7:
            if i >= n:
                return None
            length += src[i]
            i += 1
        if i >= n:
            return None
        back = len(out) - ((ctrl & 0x1F) << 8) - src[i] - 1
        i += 1
        length += 2
        if back < 0 or len(out) + length > size:
            return None
        for _ in range(length):  # the reference may overlap what it writes
            chunk = out[back:back + length]
            out += chunk[:length]
            length -= len(chunk)
            back += len(chunk)
            if length <= 0:
                break
    return bytes(out) if len(out) == size else None
