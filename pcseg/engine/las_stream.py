"""Segment a LAS/LAZ tile of any size into a classified copy of it, streaming from disk.

    stats = segment_las(seg, "tile.laz", "out/tile.laz")     # classification from the model

Three passes over the file, each in chunks of ``chunk_points`` points (laspy's chunked reader):

1. **bin**: every point goes to the square spatial tile (of side ``tile_size`` metres, a grid over
   the header's bounds) that holds it, as a *core* point, and to each neighbouring tile within
   ``margin`` metres of it, as a *context* point. Tiles are spilled to files in a temporary folder
   beside the output, so memory holds one chunk, not the file.
2. **segment**: each tile (core + context points, in file order) is read back and run through the
   :class:`~pcseg.engine.segmenter.Segmenter`; the core points' classes (ASPRS codes through the
   label map) go into one uint8 array of N entries (and, on request, a float32 probability array).
3. **write**: the file is read again chunk by chunk, ``classification`` is replaced and the chunk
   written (laspy's chunked writer) with the input's header, VLRs and EVLRs.

Memory is bounded by the chunk, the largest tile and N * (1 + 4) bytes, whatever the file size.
The result does not depend on ``chunk_points``: tiles hold the same points in the same order.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from pcseg.atomic import atomic_path
from pcseg.errors import PcsegValueError, PointCloudFormatError

PROBABILITY_DIM = "probability"


def plan_tiles(header, max_points: int, margin: float, tile_size: float | None = None):
    """(x0, y0, tile_size, nx, ny): the square grid of tiles over the header's xy bounds.

    Without ``tile_size``, tiles are sized to hold about ``max_points / 2`` points at the file's
    mean density (one tile when the whole file has at most ``max_points`` points); a tile is never
    narrower than ``4 * margin`` metres.
    """
    lo = np.asarray(header.mins, dtype=np.float64)[:2]
    hi = np.asarray(header.maxs, dtype=np.float64)[:2]
    extent = np.maximum(hi - lo, 1e-6)
    count = int(header.point_count)
    if tile_size is None:
        if count <= max_points:
            tile_size = float(extent.max()) + 1.0
        else:
            tile_size = math.sqrt(extent[0] * extent[1] * (max_points / 2) / count)
    tile_size = max(float(tile_size), 4.0 * float(margin), 1e-3)
    nx, ny = (int(v) for v in np.maximum(np.ceil(extent / tile_size), 1))
    return float(lo[0]), float(lo[1]), tile_size, nx, ny


def segment_las(seg, src, dst, *, chunk_points: int = 1_000_000, margin: float | None = None,
                tile_size: float | None = None, probability: bool = False, progress: bool = True,
                metres_per_unit: float | None = None) -> dict:
    """Write ``dst`` (.las or .laz): a copy of ``src`` with ``classification`` from ``seg``.

    Every other dimension, the header (version, point format, scales, offsets, dates, ids), VLRs
    (the CRS) and EVLRs are kept. With ``probability`` an extra-bytes dimension ``probability``
    (float32, the predicted class's probability in [0, 1]) is added to the point format.

    Args:
        seg: a :class:`~pcseg.engine.segmenter.Segmenter` with an ASPRS-coded label map.
        src, dst: input and output paths; ``dst`` is written atomically (.laz compresses).
        chunk_points: points per read/write chunk (memory, not results, depends on it).
        margin: context in metres around each tile (default ``seg.chunk_margin``).
        tile_size: side of the square tiles in metres (default from ``seg.max_points``).
        metres_per_unit: metres per coordinate unit (default from the CRS: feet are converted,
            so a model trained in metres sees metres; 1.0 without a CRS).
    Returns:
        dict with ``points``, ``tiles``, ``seconds``, ``points_per_second`` and ``class_counts``
        (ASPRS code -> number of points).
    """
    import laspy

    from pcseg.io.las import las_metres_per_unit, open_las

    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() not in (".las", ".laz"):
        raise PcsegValueError(f"output {dst}: a classified copy must be .las or .laz")
    if src.resolve() == dst.resolve():
        raise PcsegValueError(f"output {dst} is the input file; choose another --out folder")
    if int(chunk_points) < 1:
        raise PcsegValueError(f"chunk_points must be a positive number of points, got {chunk_points}")
    margin = float(seg.chunk_margin if margin is None else margin)
    started = time.perf_counter()
    with open_las(src) as reader:
        header = reader.header
        total = int(header.point_count)
        if total == 0:
            raise PointCloudFormatError(f"{src}: the cloud is empty (0 points)")
        raw_ids = np.asarray([seg.label_map.to_raw(np.array([c]))[0] for c in range(seg.num_classes)])
        if raw_ids.max() > 255 or (header.point_format.id < 6 and raw_ids.max() > 31):
            raise PcsegValueError(f"{src}: the label map {seg.label_map.name!r} has raw ids up to {raw_ids.max()}, "
                                  f"more than LAS point format {header.point_format.id} classification holds")
        metres = las_metres_per_unit(header) if metres_per_unit is None else float(metres_per_unit)
        grid = plan_tiles(header, seg.max_points, margin / metres, None if tile_size is None else tile_size / metres)
        bar = _bar(progress, 3 * total, src.name)
        with tempfile.TemporaryDirectory(prefix=".pcseg-tiles-", dir=dst.parent if dst.parent.exists() else None) as tmp:
            spill = _TileSpill(Path(tmp), _stored_fields(seg.features, header.point_format))
            for start, points in _chunks(reader, chunk_points):
                spill.add(start, points, grid, margin)
                bar.update(len(points))
            classes = np.zeros(total, dtype=np.uint8)
            proba = np.zeros(total, dtype=np.float32) if probability else None
            done = np.zeros(total, dtype=bool)
            for key in spill.keys():
                record = spill.load(key)
                core = record["core"]
                if not core.any():
                    continue
                cloud = _tile_cloud(record, header, src, metres)
                part = seg.predict_proba(cloud)[core]
                best = part.argmax(axis=1)
                index = record["index"][core]
                classes[index] = raw_ids[best]
                done[index] = True
                if proba is not None:
                    proba[index] = part[np.arange(len(best)), best]
                bar.update(int(core.sum()))
        if not done.all():
            raise PointCloudFormatError(f"{src}: {int((~done).sum())} points were not assigned to a tile")
    with open_las(src) as reader:
        out_header = copy.deepcopy(reader.header)
        evlrs = list(getattr(reader.header, "evlrs", None) or [])
        if proba is not None and PROBABILITY_DIM not in out_header.point_format.dimension_names:
            out_header.add_extra_dims([laspy.ExtraBytesParams(name=PROBABILITY_DIM, type=np.float32,
                                                             description="pcseg class probability")])
        dst.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dst) as tmp_out:
            with laspy.open(str(tmp_out), mode="w", header=out_header,
                            do_compress=dst.suffix.lower() == ".laz") as writer:
                for start, points in _chunks(reader, chunk_points):
                    stop = start + len(points)
                    points = _with_format(points, out_header)
                    points.classification = classes[start:stop]
                    if proba is not None:
                        points[PROBABILITY_DIM] = proba[start:stop]
                    writer.write_points(points)
                    bar.update(len(points))
                if evlrs:
                    from laspy.vlrs.vlrlist import VLRList

                    writer.write_evlrs(VLRList(evlrs))
    bar.close()
    seconds = time.perf_counter() - started
    codes, counts = np.unique(classes, return_counts=True)
    return {"points": total, "tiles": grid[3] * grid[4], "tile_size": grid[2], "seconds": seconds,
            "points_per_second": total / max(seconds, 1e-9),
            "class_counts": {int(c): int(n) for c, n in zip(codes, counts)}}


# ---------------------------------------------------------------------------------------------- helpers
def _chunks(reader, chunk_points):
    """Yield (index of the first point, laspy point record) over the whole file."""
    start = 0
    for points in reader.chunk_iterator(int(chunk_points)):
        yield start, points
        start += len(points)


def _with_format(points, header):
    """``points`` in ``header``'s point format (adds zeroed extra dimensions; a no-op otherwise)."""
    import laspy

    if points.point_format == header.point_format:
        return points
    out = laspy.ScaleAwarePointRecord.zeros(len(points), header=header)
    for name in points.array.dtype.names:
        out.array[name] = points.array[name]
    return out


def _stored_fields(features, point_format) -> list[str]:
    """Which optional per-point fields the tiles must carry for ``features``."""
    dims = set(point_format.dimension_names)
    fields = []
    if "intensity" in features and "intensity" in dims:
        fields.append("intensity")
    if "rgb" in features and {"red", "green", "blue"} <= dims:
        fields.append("rgb")
    return fields


class _TileSpill:
    """Per-tile record files: index int64, X/Y/Z int32, core bool, and the stored fields."""

    def __init__(self, folder: Path, fields):
        self.folder = folder
        columns = [("index", "<i8"), ("ints", "<i4", (3,)), ("core", "?")]
        if "intensity" in fields:
            columns.append(("intensity", "<u2"))
        if "rgb" in fields:
            columns.append(("rgb", "<u2", (3,)))
        self.dtype = np.dtype(columns)
        self.fields = fields
        self._keys: set[int] = set()

    def add(self, start, points, grid, margin) -> None:
        x0, y0, size, nx, ny = grid
        x = np.asarray(points.x, dtype=np.float64)
        y = np.asarray(points.y, dtype=np.float64)
        ix = np.clip(np.floor((x - x0) / size).astype(np.int64), 0, nx - 1)
        iy = np.clip(np.floor((y - y0) / size).astype(np.int64), 0, ny - 1)
        records = np.zeros(len(points), dtype=self.dtype)
        records["index"] = start + np.arange(len(points))
        records["ints"] = np.stack([np.asarray(points.X), np.asarray(points.Y), np.asarray(points.Z)], axis=1)
        if "intensity" in self.fields:
            records["intensity"] = np.asarray(points.intensity)
        if "rgb" in self.fields:
            records["rgb"] = np.stack([np.asarray(points.red), np.asarray(points.green), np.asarray(points.blue)], 1)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                tx, ty = ix + dx, iy + dy
                # inside the neighbour's box grown by the margin (the own tile: always)
                near = (tx >= 0) & (tx < nx) & (ty >= 0) & (ty < ny)
                if dx or dy:
                    near &= (x >= x0 + tx * size - margin) & (x < x0 + (tx + 1) * size + margin)
                    near &= (y >= y0 + ty * size - margin) & (y < y0 + (ty + 1) * size + margin)
                if not near.any():
                    continue
                keys = tx[near] * ny + ty[near]
                picked = records[near].copy()
                picked["core"] = not (dx or dy)
                order = np.argsort(keys, kind="stable")
                keys, picked = keys[order], picked[order]
                bounds = np.flatnonzero(np.diff(keys)) + 1
                for part_keys, part in zip(np.split(keys, bounds), np.split(picked, bounds)):
                    key = int(part_keys[0])
                    self._keys.add(key)
                    with open(self.folder / f"{key}.bin", "ab") as handle:
                        part.tofile(handle)

    def keys(self) -> list[int]:
        return sorted(self._keys)

    def load(self, key: int) -> np.ndarray:
        """The tile's records in file order (core and context interleaved as in the file)."""
        records = np.fromfile(self.folder / f"{key}.bin", dtype=self.dtype)
        return records[np.argsort(records["index"], kind="stable")]


def _tile_cloud(record, header, src, metres=1.0):
    """A PointCloud of a tile's records, local to the floor of the tile's own minimum, in metres."""
    from pcseg.io import PointCloud
    from pcseg.io.las import local_xyz, scale_to_metres

    xyz, offset = local_xyz(record["ints"].astype(np.int64), header)
    xyz, offset = scale_to_metres(xyz, offset, metres)  # a CRS in feet: the model sees metres
    kwargs = {"xyz": xyz, "offset": offset, "source": str(src)}
    if "intensity" in record.dtype.names:
        kwargs["intensity"] = record["intensity"].astype(np.float32)
    if "rgb" in record.dtype.names:
        rgb = record["rgb"].astype(np.float64)
        kwargs["rgb"] = (rgb / (65535.0 if rgb.max() > 255 else 255.0)).astype(np.float32)
    return PointCloud(**kwargs)


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _bar(progress: bool, total: int, name: str):
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=f"{name} (bin, segment, write)", unit="pt", unit_scale=True, dynamic_ncols=True)
