"""``.las`` / ``.laz`` through laspy: scaled coordinates, intensity, RGB, classification.

Damaged files must not take the caller down: the header's counts are checked against the file
size before laspy sees it (:mod:`pcseg.io.las_check`: a LAS promising more points than it holds
is refused at once), and compressed points are decoded in a child process (:func:`_read_laz_in_child`)
with a memory and time limit, so a decompressor that aborts or runs away on corrupt data becomes a
:class:`PointCloudFormatError` naming the file instead of killing a batch job.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from pcseg.errors import PcsegValueError, PointCloudFormatError
from pcseg.io._common import scale_colors
from pcseg.io.las_check import check_las_layout
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
    layout = check_las_layout(path)
    if layout.compressed:
        las = _read_laz_in_child(path, layout)
    else:
        try:
            las = laspy.read(where)
        except Exception as exc:  # laspy raises its own LaspyException and plain errors for bad files
            raise PointCloudFormatError(f"{where}: not a readable LAS/LAZ file ({_short(exc)})") from None
    dims = set(las.point_format.dimension_names)
    for name in las_fields or ():
        if name not in dims:
            raise PointCloudFormatError(
                f"{where}: LAS point format {las.point_format.id} has no field {name!r}; "
                f"it has {sorted(dims)}"
            )
    if len(las.points) == 0:
        raise PointCloudFormatError(f"{where}: the cloud is empty (0 points)")
    return cloud_from_records(las.points, las.header, where)


def integer_xyz(points) -> np.ndarray:
    """int64 (N, 3) stored integer coordinates ``X, Y, Z`` of a laspy point record."""
    return np.stack([np.asarray(points.X), np.asarray(points.Y), np.asarray(points.Z)], axis=1).astype(np.int64)


def local_xyz(ints: np.ndarray, header) -> tuple[np.ndarray, np.ndarray]:
    """(float32 (N, 3) xyz, float64 (3,) offset) of stored integers ``ints`` (N, 3) in metres.

    The offset is the whole-metre floor of the points' own minimum, so xyz are small numbers and
    ``xyz + offset`` gives world coordinates to well under a millimetre. The same integers give the
    same result whichever file chunk they were read from.
    """
    scales = np.asarray(header.scales, dtype=np.float64)
    offsets = np.asarray(header.offsets, dtype=np.float64)
    low = ints.min(axis=0)
    # local = (X - Xmin) * scale + (offset + Xmin * scale - floor): small numbers, exact offset
    world_min = low * scales + offsets
    offset = np.floor(world_min)
    return ((ints - low) * scales + (world_min - offset)).astype(np.float32), offset


def cloud_from_records(points, header, source: str = "", ints: np.ndarray | None = None) -> PointCloud:
    """A :class:`PointCloud` of a laspy point record (a whole file or one chunk of it).

    ``ints`` (N, 3) int64 may give the stored coordinates when the caller already holds them.
    Fields: ``intensity`` (raw 16-bit), ``rgb`` in [0, 1] (16-bit or 8-bit colour scaled), ``labels``
    the ASPRS ``classification`` codes.
    """
    ints = integer_xyz(points) if ints is None else ints
    xyz, offset = local_xyz(ints, header)
    dims = set(points.point_format.dimension_names)
    kwargs: dict = {"xyz": xyz, "offset": offset, "source": source}
    if "intensity" in dims:
        kwargs["intensity"] = np.asarray(points.intensity, dtype=np.float32)
    if {"red", "green", "blue"} <= dims:
        rgb = np.stack([np.asarray(points.red), np.asarray(points.green), np.asarray(points.blue)], axis=1)
        kwargs["rgb"] = (rgb.astype(np.float64) / 65535.0).astype(np.float32) if rgb.max() > 255 else scale_colors(rgb, source)
    if "classification" in dims:
        kwargs["labels"] = np.asarray(points.classification, dtype=np.int64)
    return PointCloud(**kwargs)


def open_las(path):
    """``laspy.open(path)`` for reading, with pcseg errors for a missing or unreadable file."""
    from pathlib import Path

    from pcseg.errors import PcsegFileNotFoundError

    try:
        import laspy
    except ImportError:
        raise PcsegValueError(f"{path}: reading LAS files needs laspy (pip install laspy)") from None
    if not Path(path).is_file():
        raise PcsegFileNotFoundError(f"LAS file not found: {path}")
    try:
        return laspy.open(str(path))
    except Exception as exc:
        raise PointCloudFormatError(f"{path}: not a readable LAS/LAZ file ({exc})") from None


def las_header_summary(path) -> dict:
    """What the header of a LAS/LAZ file says, read without touching the points (fast on any size).

    Returns a dict: ``file``, ``points``, ``version``, ``point_format``, ``compressed``,
    ``dimensions`` (names), ``extra_dimensions``, ``bounds_min``/``bounds_max`` (float64 world
    metres), ``scales``, ``offsets``, ``points_by_return``, ``crs`` (WKT text or None),
    ``vlrs``/``evlrs`` (descriptions), ``system_identifier``, ``generating_software``, ``creation_date``.
    """
    with open_las(path) as reader:
        header = reader.header
        fmt = header.point_format
        crs_wkt = None
        for vlr in list(header.vlrs) + list(getattr(header, "evlrs", None) or []):
            if type(vlr).__name__ == "WktCoordinateSystemVlr":
                crs_wkt = vlr.string
        by_return = [int(v) for v in header.number_of_points_by_return]
        while by_return and by_return[-1] == 0:
            by_return.pop()
        return {
            "file": str(path),
            "points": int(header.point_count),
            "version": str(header.version),
            "point_format": int(fmt.id),
            "compressed": bool(str(path).lower().endswith(".laz") or header.are_points_compressed),
            "dimensions": list(fmt.dimension_names),
            "extra_dimensions": list(fmt.extra_dimension_names),
            "bounds_min": [float(v) for v in header.mins],
            "bounds_max": [float(v) for v in header.maxs],
            "scales": [float(v) for v in header.scales],
            "offsets": [float(v) for v in header.offsets],
            "points_by_return": by_return,
            "crs": crs_wkt,
            "vlrs": [f"{v.user_id}/{v.record_id}: {v.description}".strip() for v in header.vlrs],
            "evlrs": [f"{v.user_id}/{v.record_id}: {v.description}".strip() for v in (getattr(header, "evlrs", None) or [])],
            "system_identifier": str(header.system_identifier).strip("\x00 "),
            "generating_software": str(header.generating_software).strip("\x00 "),
            "creation_date": str(header.creation_date) if header.creation_date else None,
        }


_FEET = {9002: 0.3048, 9003: 1200.0 / 3937.0}


def las_metres_per_unit(header) -> float:
    """Metres per coordinate unit of a LAS header's CRS: 1.0 for metres or no CRS, 0.3048 for
    international feet, 0.3048006 for US survey feet (WKT ``UNIT`` of the projected CRS, else
    the GeoTIFF ``ProjLinearUnitsGeoKey``). Elevations are assumed in the same unit.
    """
    import re

    for vlr in list(header.vlrs) + list(getattr(header, "evlrs", None) or []):
        if type(vlr).__name__ == "WktCoordinateSystemVlr":
            text = str(vlr.string)
            start = text.find("PROJCS[")
            units = re.findall(r'UNIT\[\s*"([^"]*)"\s*,\s*([0-9.eE+-]+)', text[start:] if start >= 0 else "")
            linear = [float(f) for name, f in units if "degree" not in name.lower() and "radian" not in name.lower()]
            if linear and 0 < linear[0] < 1e4:  # the projected CRS's unit comes before a VERT_CS's
                return linear[0]
        if type(vlr).__name__ == "GeoKeyDirectoryVlr":
            for key in getattr(vlr, "geo_keys", []):
                if key.id == 3076 and key.value_offset in _FEET:
                    return _FEET[key.value_offset]
    return 1.0


def scale_to_metres(xyz: np.ndarray, offset: np.ndarray, metres: float) -> tuple[np.ndarray, np.ndarray]:
    """(xyz, offset) of points local to ``offset`` in a unit of ``metres`` metres, converted to
    metres and made local to the floor of the offset in metres, so the voxel grid of a tile in feet
    is aligned to whole metres as it is for a tile in metres (both the folder dataset and the
    streaming writer use this, so training and segmentation see the same grid)."""
    if metres == 1.0:
        return xyz, offset
    world_min = np.asarray(offset, dtype=np.float64) * metres
    new_offset = np.floor(world_min)
    return (xyz.astype(np.float64) * metres + (world_min - new_offset)).astype(np.float32), new_offset


def _short(exc) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return text or type(exc).__name__


def _read_laz_in_child(path, layout):
    """Decompress ``path`` in a forked child (memory and time limited) and read the LAS it writes.

    Forking costs a few milliseconds (laspy is already imported); the child's address space may
    grow by 2 GiB plus three times the decompressed size the (checked) header states, so a damaged
    count fails there with a MemoryError instead of exhausting the machine.
    """
    import tempfile

    import laspy

    where = str(path)
    size = path.stat().st_size
    budget = (2 << 30) + 3 * layout.points * layout.record_size + 2 * size
    timeout = 60 + layout.points * layout.record_size / 2**20
    with tempfile.TemporaryDirectory(prefix="pcseg-laz-") as folder:
        out = os.path.join(folder, "points.las")
        # single-threaded lazrs: a forked child inherits rayon's pool state but not its threads,
        # so the parallel backend can wait forever there once the parent has used it
        backend = laspy.LazBackend.Lazrs if laspy.LazBackend.Lazrs.is_available() else None
        status, reason = _run_forked(lambda: laspy.read(where, laz_backend=backend).write(out), budget, timeout)
        if status == "timeout":
            raise PointCloudFormatError(f"{where}: decompressing the LAZ points took over {timeout:.0f} s; "
                                        "the file is damaged")
        if status != 0:
            raise PointCloudFormatError(f"{where}: not a readable LAZ file ({reason})")
        try:
            return laspy.read(out)
        except Exception as exc:
            raise PointCloudFormatError(f"{where}: not a readable LAZ file ({_short(exc)})") from None


def _run_forked(work, budget: int, timeout: float):
    """Run ``work()`` in a forked child; returns (0, "") on success, (exit code or "timeout", reason)."""
    import faulthandler
    import resource
    import tempfile

    if not hasattr(os, "fork"):  # no fork (Windows): decode in this process
        work()
        return 0, ""
    read_end, write_end = os.pipe()
    log = tempfile.TemporaryFile()  # the child's stderr: a crash message, kept off the caller's terminal
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 3
        try:
            os.close(read_end)
            faulthandler.disable()
            os.dup2(log.fileno(), 2)
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = _address_space() + budget
            if hard == resource.RLIM_INFINITY or limit < hard:
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            work()
            code = 0
        except BaseException as exc:  # noqa: BLE001 - the child reports everything and exits
            os.write(write_end, _short(exc).encode("utf-8", "replace")[:300])
        finally:
            os._exit(code)
    os.close(write_end)
    done = 0
    try:
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                return "timeout", ""
            time.sleep(0.005)
        reason = os.read(read_end, 400).decode("utf-8", "replace")
        if os.WIFSIGNALED(status):
            log.seek(0)
            lines = [line for line in log.read()[-2000:].decode("utf-8", "replace").splitlines() if line.strip()]
            said = f": {lines[-1].strip()[:160]}" if lines else ""
            return -os.WTERMSIG(status), f"the decompressor crashed with {signal.Signals(os.WTERMSIG(status)).name}{said}"
        return os.WEXITSTATUS(status), reason
    finally:
        os.close(read_end)
        log.close()
        if not done:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _address_space() -> int:
    """This process's virtual memory size in bytes (Linux), or 0 where unknown."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
