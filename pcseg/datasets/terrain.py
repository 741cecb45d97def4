"""Terrain-relative heights for airborne tiles: features that do not depend on where the tile is.

A grid of the lowest point per cell is cleaned of isolated low outliers (noise below ground) and
opened morphologically (a minimum then a maximum filter of the same window): objects narrower than
the window (trees, buildings, cars) disappear while planes and slopes are kept exactly, which gives
a ground estimate under every point. Heights above it are the same whatever the tile's absolute
elevation or georeferenced position.
"""

from __future__ import annotations

import numpy as np

# window (metres) of the ground estimate behind ``height_above_ground``; tiles are segmented with
# at least half of it as context so the estimate at a tile's edge matches the in-memory one
GROUND_WINDOW = 25.0
LOCAL_WINDOW = 3.0
# a second, wide estimate for halls and roofs larger than GROUND_WINDOW (biased more on slopes)
WIDE_WINDOW = 61.0
# slope-limited ground (``slope_ground``): reach (metres) and the steepest terrain slope it follows
SLOPE_REACH = 50.0
SLOPE_LIMIT = 0.2


def _cell_grid(xyz: np.ndarray, cell: float):
    ij = np.floor((xyz[:, :2] - xyz[:, :2].min(axis=0)) / cell).astype(np.int64)
    shape = tuple(int(v) + 1 for v in ij.max(axis=0))
    flat = ij[:, 0] * shape[1] + ij[:, 1]
    lowest = np.full(shape[0] * shape[1], np.inf)
    np.minimum.at(lowest, flat, xyz[:, 2].astype(np.float64))
    return lowest.reshape(shape), flat


def _fill_empty(grid: np.ndarray) -> np.ndarray:
    """Empty (inf) cells take the value of the nearest filled cell."""
    from scipy import ndimage

    empty = ~np.isfinite(grid)
    if not empty.any() or empty.all():
        return np.where(empty, 0.0, grid)
    index = ndimage.distance_transform_edt(empty, return_distances=False, return_indices=True)
    return grid[tuple(index)]


def terrain_heights(xyz: np.ndarray, cell: float = 1.0, window: float = GROUND_WINDOW,
                    local_window: float = LOCAL_WINDOW, wide_window: float | None = None):
    """(height above ground, height above the local minimum), float32 (N,) each, in xyz's units;
    with ``wide_window`` a third: the height above the ground opened with that wider window.

    ``xyz`` float (N, 3) with z up. ``window``: side of the opening that estimates the ground
    (objects narrower than it count as above ground); ``local_window``: side of the square whose
    lowest point the second height is measured from (small objects, steps, kerbs).
    """
    from scipy import ndimage

    xyz = np.asarray(xyz, dtype=np.float64)
    if len(xyz) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    grid, flat = _cell_grid(xyz, cell)
    grid = _fill_empty(grid)
    # low outliers: a cell far below the median of its neighbours takes that median
    median = ndimage.median_filter(grid, size=3, mode="nearest")
    grid = np.where(grid < median - 2.0, median, grid)
    size = max(int(round(window / cell)) | 1, 1)
    ground = ndimage.maximum_filter(ndimage.minimum_filter(grid, size=size, mode="nearest"), size=size, mode="nearest")
    local = ndimage.minimum_filter(grid, size=max(int(round(local_window / cell)) | 1, 1), mode="nearest")
    z = xyz[:, 2]
    out = [(z - ground.reshape(-1)[flat]).astype(np.float32), (z - local.reshape(-1)[flat]).astype(np.float32)]
    if wide_window is not None:
        size = max(int(round(wide_window / cell)) | 1, 1)
        wide = ndimage.maximum_filter(ndimage.minimum_filter(grid, size=size, mode="nearest"), size=size, mode="nearest")
        out.append((z - wide.reshape(-1)[flat]).astype(np.float32))
    return tuple(out)


def slope_ground(xyz: np.ndarray, cell: float = 1.0, slope: float = SLOPE_LIMIT, reach: float = SLOPE_REACH):
    """float32 (N,): the height of each point above a slope-limited lower envelope of the tile.

    The envelope at a grid cell is ``min over observed cells c' within reach of (lowest z in c' +
    slope * distance)`` (distance along 8-connected grid steps, within 8% of the Euclidean one).
    Terrain no steeper than ``slope`` is followed exactly; a roof of any width reads as above
    ground by up to ``slope`` times its distance to the nearest ground seen beside it (an opening
    keeps roofs wider than its window at zero instead). Cells with no point stay unknown rather
    than copying a neighbour's height, so a gap between a roof and the ground does not widen the
    roof. Only heights relative to the tile's own points: no absolute coordinate enters.

    ``xyz`` float (N, 3) metres, z up; ``reach`` bounds the search (tiles need that much context).
    """
    from scipy import ndimage

    xyz = np.asarray(xyz, dtype=np.float64)
    if len(xyz) == 0:
        return np.zeros(0, np.float32)
    grid, flat = _cell_grid(xyz, cell)
    observed = np.isfinite(grid)
    filled = _fill_empty(grid)
    # low outliers (noise below ground) are replaced as in terrain_heights
    median = ndimage.median_filter(filled, size=3, mode="nearest")
    grid = np.where(observed, np.where(filled < median - 2.0, median, filled), np.inf)
    step = slope * cell * np.array([[np.sqrt(2), 1, np.sqrt(2)], [1, 0, 1], [np.sqrt(2), 1, np.sqrt(2)]])
    envelope = grid
    for _ in range(max(int(round(reach / cell)), 1)):
        nxt = ndimage.grey_erosion(envelope, structure=-step, mode="constant", cval=np.inf)
        if np.array_equal(nxt, envelope):
            break
        envelope = nxt
    return (xyz[:, 2] - envelope.reshape(-1)[flat]).astype(np.float32)
