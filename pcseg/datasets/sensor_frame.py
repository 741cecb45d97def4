"""Move a vehicle LiDAR scan that is not in its sensor's frame back into it (``dataset.recenter``).

Outdoor models take the points' coordinates as features, learned in the sensor frame: the sensor
at the origin, the ground about a sensor height below it. Scans exported in a map frame (poses
applied, as odometry tools and some dataset exports do) have their sensor tens or hundreds of
metres away, and such a model labels them poorly: a real SemanticKITTI frame stored 100 m off the
origin scored 9 % mIoU against 30 % once moved back. The sensor position is not stored in these
files, so it is estimated from the scan itself:

- **xy**: a spinning LiDAR's point density falls with the square of the range, and the vehicle
  hides a small circle around the sensor: the sensor sits in an almost empty circle inside a
  dense ring of near returns. On the real frames and generated scans tried, the estimate lands
  within about 1.2 m of the true position.
- **z**: the ground near the sensor (a low percentile of the heights within 20 m) is put at
  :data:`SENSOR_HEIGHT` below the origin.

A scan already in a sensor frame is left exactly as it is: only an estimated sensor farther than
:data:`CENTRED_RADIUS` from the origin, or a ground farther than :data:`GROUND_TOLERANCE` from
the expected height, moves the points. The shift is a pure translation: labels stay per point.
"""

from __future__ import annotations

import numpy as np

SENSOR_HEIGHT = 1.73  # metres: KITTI's HDL-64E above the road, the frame the outdoor models learned
CENTRED_RADIUS = 5.0  # an estimated sensor within this many metres of the origin: already centred
GROUND_TOLERANCE = 1.5  # metres the near ground may differ from -SENSOR_HEIGHT before z moves
_CELL = 0.5  # metres, ground-plan histogram cells
_BLIND = 2.5  # metres: radius of the (nearly) empty circle around a vehicle's sensor
_RING = 8.0  # metres: outer radius of the dense ring of near returns


def _disk(radius_cells: float) -> np.ndarray:
    k = int(np.ceil(radius_cells))
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
    return (xx**2 + yy**2 <= radius_cells**2).astype(np.float64)


def estimate_sensor_xy(xyz: np.ndarray) -> np.ndarray:
    """(2,) float64 estimate of the horizontal sensor position of a spinning-LiDAR scan (N, 3).

    The sensor is where a dense ring of near returns (out to 8 m) surrounds an almost empty
    circle (the vehicle itself and the beams' blind zone, 2.5 m): the ground-plan cell that
    maximises ring count / (inner count + 1) among cells with a substantial ring.
    """
    from scipy.signal import fftconvolve

    xy = np.asarray(xyz, dtype=np.float64)[:, :2]
    lo = xy.min(axis=0) - _RING
    cells = np.floor((xy - lo) / _CELL).astype(np.int64)
    shape = cells.max(axis=0) + 1 + int(_RING / _CELL)
    if shape[0] * shape[1] > 16_000_000:  # spread wider than 2 km: no single spinning scan
        return np.median(xy, axis=0)
    counts = np.zeros(shape)
    np.add.at(counts, (cells[:, 0], cells[:, 1]), 1.0)
    inner = fftconvolve(counts, _disk(_BLIND / _CELL), mode="same")
    ring = fftconvolve(counts, _disk(_RING / _CELL), mode="same") - inner
    top = ring.max()
    score = np.where(ring > 0.2 * top, ring / (np.maximum(inner, 0.0) + 0.01 * top + 1.0), 0.0)
    peak = np.array(np.unravel_index(int(np.argmax(score)), score.shape), dtype=np.float64)
    return lo + (peak + 0.5) * _CELL


def sensor_frame_offset(xyz: np.ndarray) -> np.ndarray:
    """(3,) float64 translation that puts the scan ``xyz`` (N, 3) in its sensor's frame; zeros
    when it already is (see the module docstring for the tolerances)."""
    xyz = np.asarray(xyz)
    offset = np.zeros(3)
    if len(xyz) < 100:
        return offset
    x, y = xyz[:, 0], xyz[:, 1]
    r2 = x * x + y * y  # squared ranges in the scan's own dtype: this check runs on every scan labelled
    inner = np.count_nonzero(r2 <= _BLIND**2)
    ring = np.count_nonzero(r2 < _RING**2) - inner
    if ring >= 0.05 * len(r2) and inner <= 0.05 * ring:
        centre = np.zeros(2)  # the origin already has the sensor's signature: skip the search (~50 ms)
    else:
        centre = estimate_sensor_xy(xyz)
    if np.hypot(*centre) > CENTRED_RADIUS:
        offset[:2] = -centre
    else:
        centre = np.zeros(2)
    if centre.any():
        near = np.sum((np.asarray(xyz[:, :2], dtype=np.float64) - centre) ** 2, axis=1) < 20.0**2
    else:
        near = r2 < 20.0**2
    heights = xyz[near, 2]
    if len(heights) >= 100:
        ground = float(np.percentile(heights, 10))
        if abs(ground + SENSOR_HEIGHT) > GROUND_TOLERANCE:
            offset[2] = -SENSOR_HEIGHT - ground
    return offset


def to_sensor_frame(cloud):
    """``cloud`` (a :class:`~pcseg.io.PointCloud`) translated into its sensor's frame, or the
    same object when it already is."""
    import dataclasses

    offset = sensor_frame_offset(cloud.xyz)
    if not offset.any():
        return cloud
    xyz = (np.asarray(cloud.xyz, dtype=np.float64) + offset).astype(np.float32)
    return dataclasses.replace(cloud, xyz=xyz)
