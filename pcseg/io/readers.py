"""``read_points``: one entry point that picks a reader by file suffix.

Column layouts (``.bin``, ``.txt``/``.xyz``, plain ``.npy`` arrays, h5 "data" arrays) are
described by ``record_fields``: one name per column, from

    x y z  intensity  r g b (or red green blue)  nx ny nz  label  instance

Any other name (for example nuScenes' ``ring``, or ``_``) marks a column that is skipped.
Without ``record_fields`` the column count picks a default layout (``DEFAULT_LAYOUTS``).
"""

from __future__ import annotations

import inspect
import tokenize
import warnings
import zipfile
import zlib

import numpy as np

from pcseg.errors import PcsegError, PcsegValueError, PointCloudFormatError
from pcseg.io._common import check_points, existing_file, scale_colors, split_offset
from pcseg.io.pointcloud import PointCloud

# column count -> field names, used when the caller gives neither record_fields nor a structure
DEFAULT_LAYOUTS: dict[int, tuple[str, ...]] = {
    3: ("x", "y", "z"),
    4: ("x", "y", "z", "intensity"),  # KITTI / SemanticKITTI
    5: ("x", "y", "z", "intensity", "ring"),  # nuScenes LIDAR_TOP
    6: ("x", "y", "z", "r", "g", "b"),  # S3DIS
    7: ("x", "y", "z", "r", "g", "b", "label"),  # S3DIS with a label column
}

_COLOR_ALIASES = {"r": 0, "red": 0, "g": 1, "green": 1, "b": 2, "blue": 2}
_NORMAL_NAMES = {"nx": 0, "ny": 1, "nz": 2, "normal_x": 0, "normal_y": 1, "normal_z": 2}
_LABEL_NAMES = {"label", "labels", "semantic", "class", "classification", "scalar_label"}
_INSTANCE_NAMES = {"instance", "instances", "instance_id"}

SUPPORTED_SUFFIXES = (".bin", ".npy", ".npz", ".ply", ".pcd", ".las", ".laz", ".h5", ".hdf5", ".txt", ".xyz", ".pts")


def read_points(path, *, labels=None, drop_invalid: bool = False, **options) -> PointCloud:
    """Read a point cloud file into a :class:`PointCloud`, choosing the reader by suffix.

    Args:
        path: a ``.bin``, ``.npy``, ``.npz``, ``.ply``, ``.pcd``, ``.las``, ``.laz``, ``.h5``/``.hdf5``,
            ``.txt``/``.xyz``/``.pts`` file.
        labels: optional label file (see :func:`pcseg.io.read_labels`) whose ids and instance ids
            are attached; its count must equal the point count.
        drop_invalid: drop points with NaN/Inf coordinates instead of raising.
        **options: reader options:
            ``record_fields`` (sequence of column names, ``.bin``/``.txt``/``.npy``/h5 arrays),
            ``dims`` (columns per record when ``record_fields`` is not given; ``.bin`` default 4),
            ``dtype`` (``.bin`` scalar type, default float32),
            ``names`` (``.npz``/h5: field -> array name, e.g. ``{"xyz": "coord", "labels": "segment"}``),
            ``las_fields`` (``.las``: LAS dimensions that must be present, e.g. ``["classification"]``).

    Returns:
        PointCloud with float32 xyz (metres), plus whatever fields the file holds: intensity as
        stored, rgb scaled to [0, 1], normals, labels (raw ids), instance; far-from-origin data
        (LAS) keeps a float64 ``offset``.

    Raises:
        PcsegFileNotFoundError for a missing file; PointCloudFormatError for an unknown suffix, a
        malformed file, an empty cloud, NaN/Inf coordinates or a label count mismatch.
    """
    path = existing_file(path)
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise PointCloudFormatError(
            f"{path}: unknown point cloud suffix {path.suffix!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    accepted = [p for p in inspect.signature(reader).parameters if p != "path"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise PcsegValueError(
            f"read_points({path}): option(s) {unknown} do not apply to {suffix} files; accepted: {accepted}"
        )
    try:
        cloud = reader(path, **options)
    except PcsegError:
        raise
    except (Exception, MemoryError) as exc:
        # a damaged file can trip numpy/zipfile/laspy/h5py deep inside; the readers check what they
        # can and name the problem, and this keeps the contract for the rest: one error naming
        # the file, no traceback (the exception type is kept for a bug report)
        raise PointCloudFormatError(
            f"{path}: not a readable {suffix} file (damaged or not in that format: {type(exc).__name__})"
        ) from None
    if labels is not None:
        from pcseg.io.labels import read_labels

        semantic, instance = read_labels(labels, return_instance=True, num_points=len(cloud))
        cloud.labels = semantic
        # only SemanticKITTI .label files carry instance ids
        cloud.instance = instance if str(labels).lower().endswith(".label") else None
    return check_points(cloud, drop_invalid=drop_invalid)


# --------------------------------------------------------------------------- column layouts
def cloud_from_columns(columns: np.ndarray, fields, where: str) -> PointCloud:
    """Build a cloud from an (N, C) array whose columns are named by ``fields`` (see module doc)."""
    columns = np.asarray(columns)
    fields = [str(f).lower() for f in fields]
    if columns.ndim != 2 or columns.shape[1] != len(fields):
        raise PointCloudFormatError(
            f"{where}: {columns.shape} array does not match the {len(fields)} record fields {fields}"
        )
    for axis in ("x", "y", "z"):
        if axis not in fields:
            raise PcsegValueError(f"{where}: record_fields {fields} lack {axis!r}")
    xyz, offset = split_offset(columns[:, [fields.index(a) for a in ("x", "y", "z")]])
    kwargs: dict = {"xyz": xyz, "offset": offset, "source": where}
    if "intensity" in fields:
        kwargs["intensity"] = columns[:, fields.index("intensity")]
    color_cols = _pick(fields, _COLOR_ALIASES, where)
    if color_cols is not None:
        kwargs["rgb"] = scale_colors(columns[:, color_cols], where)
    normal_cols = _pick(fields, _NORMAL_NAMES, where)
    if normal_cols is not None:
        kwargs["normals"] = columns[:, normal_cols]
    for key, names in (("labels", _LABEL_NAMES), ("instance", _INSTANCE_NAMES)):
        found = [i for i, f in enumerate(fields) if f in names]
        if found:
            kwargs[key] = _as_ids(columns[:, found[0]], where, key)
    return PointCloud(**kwargs)


def _pick(fields, aliases, where) -> list[int] | None:
    """Column indices of the 3 components named by ``aliases`` (component -> 0/1/2), or None."""
    found = {}
    for i, f in enumerate(fields):
        if f in aliases:
            found[aliases[f]] = i
    if not found:
        return None
    if sorted(found) != [0, 1, 2]:
        raise PcsegValueError(f"{where}: record_fields {fields}: a 3-component field is incomplete")
    return [found[0], found[1], found[2]]


def _as_ids(values, where, what) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise PointCloudFormatError(f"{where}: {what} column holds non-integer values")
    return values.astype(np.int64)


def _layout(record_fields, dims, ncols, where) -> tuple[str, ...]:
    if record_fields is not None:
        return tuple(record_fields)
    if dims is not None and dims != ncols:
        raise PcsegValueError(f"{where}: dims={dims} but the data has {ncols} columns")
    if ncols not in DEFAULT_LAYOUTS:
        raise PointCloudFormatError(
            f"{where}: {ncols} columns has no default layout; pass record_fields=[...] naming each column"
        )
    return DEFAULT_LAYOUTS[ncols]


# --------------------------------------------------------------------------- .bin
def read_bin(path, record_fields=None, dims=None, dtype="float32") -> PointCloud:
    """Flat binary records: KITTI float32 (x, y, z, intensity) by default.

    Other layouts: ``dims=5`` (nuScenes x, y, z, intensity, ring), ``dims=6`` (S3DIS x, y, z, r, g,
    b with colours 0..255), or ``record_fields=[...]`` naming each column.
    """
    dtype = np.dtype(dtype).newbyteorder("<")
    if record_fields is not None:
        width = len(record_fields)
        if dims is not None and dims != width:
            raise PcsegValueError(f"{path}: dims={dims} disagrees with {width} record_fields")
    else:
        width = 4 if dims is None else int(dims)
        if width not in DEFAULT_LAYOUTS:
            raise PcsegValueError(f"{path}: dims={width} has no default layout; pass record_fields=[...]")
    record_bytes = width * dtype.itemsize
    size = path.stat().st_size
    if size % record_bytes:
        raise PointCloudFormatError(
            f"{path}: size {size} bytes is not a whole number of {width}-value {dtype.name} records "
            f"({record_bytes} bytes each); pass dims= or record_fields= for another layout"
        )
    data = np.fromfile(path, dtype=dtype).reshape(-1, width)
    return cloud_from_columns(data, _layout(record_fields, None, width, path), str(path))


# --------------------------------------------------------------------------- .npy / .npz
_NAMED_CANDIDATES = {
    "xyz": ("xyz", "points", "point", "coord", "coords", "pos", "data"),
    "intensity": ("intensity", "intensities", "remission", "feat", "reflectance"),
    "rgb": ("rgb", "color", "colors", "colour", "colours"),
    "normals": ("normals", "normal"),
    "labels": ("labels", "label", "semantic", "semantic_label", "segment", "sem_label"),
    "instance": ("instance", "instances", "instance_label", "ins_label"),
    "pixels": ("pixels", "uv"),
}


def read_npy(path, record_fields=None, dims=None) -> PointCloud:
    """A ``.npy`` array: plain (N, C) columns (Open3D-ML (N, 3) xyz, S3DIS (N, 6) xyzrgb, ...)
    described by ``record_fields`` or the default layout, or a structured array whose field names
    are column names (what :func:`write_points` writes)."""
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, SyntaxError, EOFError, OSError, tokenize.TokenError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise PointCloudFormatError(f"{path}: not a readable .npy array ({reason})") from None
    return _cloud_from_array(data, record_fields, dims, str(path))


def _cloud_from_array(data, record_fields, dims, where) -> PointCloud:
    if data.dtype.names:
        fields = [n.lower() for n in data.dtype.names]
        columns = np.stack([data[name].astype(np.float64) for name in data.dtype.names], axis=1)
        return cloud_from_columns(columns.reshape(-1, len(fields)), fields, where)
    if data.ndim == 3:  # blocks of points (e.g. PointNet's S3DIS h5: (B, 4096, 9))
        data = data.reshape(-1, data.shape[-1])
    if data.ndim != 2:
        raise PointCloudFormatError(f"{where}: expected an (N, C) array of points, got shape {data.shape}")
    if data.dtype.kind not in "fiu":
        raise PointCloudFormatError(f"{where}: point array must be numeric, got dtype {data.dtype}")
    return cloud_from_columns(data, _layout(record_fields, dims, data.shape[1], where), where)


def read_npz(path, names=None, record_fields=None) -> PointCloud:
    """A ``.npz`` archive of named arrays: ``xyz``/``points``/``coord`` plus optional ``intensity``,
    ``rgb``/``colors``, ``normals``, ``labels``/``segment``, ``instance``, ``offset``.
    ``names`` maps a field to another array name."""
    try:
        archive = np.load(path, allow_pickle=False)
        with archive:
            # NpzFile loads an array only when indexed, so unused arrays are never read
            return _cloud_from_named(archive, names, record_fields, str(path))
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile, zlib.error) as exc:
        if isinstance(exc, PcsegError):
            raise
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise PointCloudFormatError(f"{path}: not a readable .npz archive ({reason})") from None


def _cloud_from_named(arrays: dict, names, record_fields, where) -> PointCloud:
    names = dict(names or {})
    unknown = set(names) - set(_NAMED_CANDIDATES)
    if unknown:
        raise PcsegValueError(f"{where}: names= has unknown field(s) {sorted(unknown)}; use {list(_NAMED_CANDIDATES)}")
    chosen = {}
    for field, candidates in _NAMED_CANDIDATES.items():
        if field in names:
            if names[field] not in arrays:
                raise PointCloudFormatError(
                    f"{where}: no array named {names[field]!r} (for {field}); it has {sorted(arrays)}"
                )
            chosen[field] = names[field]
        else:
            lower = {k.lower(): k for k in arrays}
            hit = next((lower[c] for c in candidates if c in lower), None)
            if hit is not None:
                chosen[field] = hit
    if "xyz" not in chosen:
        raise PointCloudFormatError(
            f"{where}: no coordinate array (looked for {list(_NAMED_CANDIDATES['xyz'])}); "
            f"it has {sorted(arrays)}; pass names={{'xyz': ...}}"
        )
    base = np.asarray(arrays[chosen["xyz"]])
    if base.ndim == 3:
        base = base.reshape(-1, base.shape[-1])
    if base.ndim != 2 or base.shape[1] < 3:
        raise PointCloudFormatError(f"{where}: coordinate array {chosen['xyz']!r} has shape {base.shape}, need (N, >=3)")
    if base.shape[1] == 3 and record_fields is None:
        cloud = cloud_from_columns(base, ("x", "y", "z"), where)
    else:
        cloud = _cloud_from_array(base, record_fields, None, where)
    n = len(cloud)
    if "offset" in arrays:
        cloud.offset = cloud.offset + np.asarray(arrays["offset"], dtype=np.float64).reshape(3)
    for field in ("intensity", "rgb", "normals", "labels", "instance", "pixels"):
        if field not in chosen:
            continue
        value = np.asarray(arrays[chosen[field]])
        want = {"rgb": 3, "normals": 3, "pixels": 2}.get(field, 1)
        value = value.reshape(-1, want) if value.size == n * want else value
        if len(value) != n:
            raise PointCloudFormatError(
                f"{where}: array {chosen[field]!r} ({field}) has {len(value)} entries for {n} points"
            )
        if field == "rgb":
            value = scale_colors(value, where)
        elif field in ("labels", "instance"):
            value = _as_ids(value.reshape(n), where, field)
        elif field == "intensity":
            value = value.reshape(n)
        setattr(cloud, field, value)
    return PointCloud(**{k: getattr(cloud, k) for k in cloud.__dataclass_fields__})


# --------------------------------------------------------------------------- .h5
def read_h5(path, names=None, record_fields=None) -> PointCloud:
    """An HDF5 file of named datasets (same names as ``.npz``; nested paths like
    ``"scan/points"`` work through ``names``). PointNet's S3DIS blocks (``data`` (B, 4096, 9),
    ``label`` (B, 4096)) are flattened; name their columns with ``record_fields``."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise PointCloudFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    try:
        with handle:
            # h5py datasets are read only when picked (np.asarray), so unused ones cost nothing
            arrays = {key: value for key, value in handle.items() if isinstance(value, h5py.Dataset)}
            for wanted in (names or {}).values():
                if wanted not in arrays and wanted in handle and isinstance(handle[wanted], h5py.Dataset):
                    arrays[wanted] = handle[wanted]
            return _cloud_from_named(arrays, names, record_fields, str(path))
    except (OSError, RuntimeError, KeyError, ValueError) as exc:  # HDF5 reports damage in these
        if isinstance(exc, PcsegError):
            raise
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise PointCloudFormatError(f"{path}: not a readable HDF5 file ({reason})") from None


# --------------------------------------------------------------------------- .txt / .xyz
def read_txt(path, record_fields=None, dims=None) -> PointCloud:
    """Whitespace (or comma) separated columns, one point per line, as S3DIS ships its rooms
    (x y z r g b with colours 0..255). Lines starting with ``#`` or ``//`` are skipped."""
    try:
        with warnings.catch_warnings():  # an empty file is reported below, not warned about
            warnings.simplefilter("ignore", UserWarning)
            data = np.loadtxt(path, dtype=np.float64, comments=("#", "//"), ndmin=2,
                              delimiter=_delimiter_of(path))
    except ValueError as exc:
        raise PointCloudFormatError(f"{path}: not a table of numbers ({exc})") from None
    if data.size == 0:
        raise PointCloudFormatError(f"{path}: the cloud is empty (0 points)")
    return cloud_from_columns(data, _layout(record_fields, dims, data.shape[1], path), str(path))


def _delimiter_of(path) -> str | None:
    with open(path, "r", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith(("#", "//")):
                return "," if "," in line else None
    return None


def _read_ply(path):
    from pcseg.io.ply import read_ply

    return read_ply(path)


def _read_pcd(path):
    from pcseg.io.pcd import read_pcd

    return read_pcd(path)


def _read_las(path, las_fields=None):
    from pcseg.io.las import read_las

    return read_las(path, las_fields=las_fields)


_READERS = {
    ".bin": read_bin,
    ".npy": read_npy,
    ".npz": read_npz,
    ".ply": _read_ply,
    ".pcd": _read_pcd,
    ".las": _read_las,
    ".laz": _read_las,
    ".h5": read_h5,
    ".hdf5": read_h5,
    ".txt": read_txt,
    ".xyz": read_txt,
    ".pts": read_txt,
}
