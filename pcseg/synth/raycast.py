"""Analytic ray casting against a scene of simple solids, vectorised with numpy.

A :class:`Scene` holds a ground plane (z = 0, labelled by a 2-D map), oriented boxes (rotated
about z only), vertical capped cylinders and ellipsoids (rotated about z only). Rays come from one
origin in a regular (elevation row, azimuth column) grid; each solid is tested only against the
window of rows and columns its bounding sphere covers, so the cost grows with the rays a solid
can hit rather than rays x solids. No open3d: this runs on the GPU machine too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# kinds of solid, stored per primitive
BOX, CYLINDER, ELLIPSOID = 0, 1, 2

_EPS = 1e-9


@dataclass
class Scene:
    """Solids with their labels. Lists while building; call :meth:`freeze` before casting.

    Coordinates are metres in a world frame with z up and the ground at z = 0.
    Every solid carries ``label`` (SemanticKITTI raw id, or any int id), ``instance`` (0 for stuff),
    ``reflectivity`` in [0, 1] and ``porosity`` in [0, 1) (probability a ray passes through, for
    foliage). ``ground_label(x, y) -> int64 labels`` names what the ground plane is at each point;
    ``ground_reflectivity(x, y) -> float`` its reflectivity (road markings are brighter);
    optional ``ground_roughness(x, y) -> metres``: returns come from up to that height above the
    plane (grass), drawn per ray. Optional heights, applied to the returns after the cast (the
    plane stays z = 0 for the ray geometry; the shifts are a few decimetres over many metres):
    ``ground_lift(x, y) -> metres`` raises ground returns (lawns behind the curb stand above the
    road); ``elevation(x, y) -> metres`` raises every return (the ground's gentle grade and
    undulation, with what stands on it).
    """

    ground_label: object = None
    ground_reflectivity: object = None
    ground_roughness: object = None
    ground_lift: object = None
    elevation: object = None
    kinds: list = field(default_factory=list)
    params: list = field(default_factory=list)  # per solid: dict of geometry
    labels: list = field(default_factory=list)
    instances: list = field(default_factory=list)
    reflectivity: list = field(default_factory=list)
    porosity: list = field(default_factory=list)

    def _add(self, kind, params, label, instance, reflectivity, porosity):
        self.kinds.append(kind)
        self.params.append(params)
        self.labels.append(int(label))
        self.instances.append(int(instance))
        self.reflectivity.append(float(reflectivity))
        self.porosity.append(float(porosity))

    def add_box(self, center, size, yaw, label, instance=0, reflectivity=0.3, porosity=0.0):
        """Box of full ``size`` (length along local x, width along y, height) at ``center``, rotated ``yaw`` rad about z."""
        center = np.asarray(center, dtype=np.float64)
        half = np.asarray(size, dtype=np.float64) / 2.0
        self._add(BOX, dict(center=center, half=half, yaw=float(yaw)), label, instance, reflectivity, porosity)

    def add_cylinder(self, x, y, z0, z1, radius, label, instance=0, reflectivity=0.3):
        """Vertical cylinder with axis at (x, y) from height z0 to z1, capped on top."""
        self._add(CYLINDER, dict(center=np.array([x, y, (z0 + z1) / 2]), z0=float(z0), z1=float(z1), radius=float(radius)),
                  label, instance, reflectivity, 0.0)

    def add_ellipsoid(self, center, radii, yaw, label, instance=0, reflectivity=0.3, porosity=0.0):
        """Ellipsoid with semi-axes ``radii`` (local x, y, z) at ``center``, rotated ``yaw`` rad about z."""
        self._add(ELLIPSOID, dict(center=np.asarray(center, np.float64), radii=np.asarray(radii, np.float64), yaw=float(yaw)),
                  label, instance, reflectivity, porosity)

    def bounding_boxes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(centers float64 (K, 3), half sizes float64 (K, 3), yaw float64 (K,)) of boxes enclosing each solid."""
        centers = np.array([p["center"] for p in self.params], dtype=np.float64).reshape(-1, 3)
        half = np.empty((len(self.params), 3))
        yaw = np.zeros(len(self.params))
        for i, (kind, p) in enumerate(zip(self.kinds, self.params)):
            if kind == BOX:
                half[i], yaw[i] = p["half"], p["yaw"]
            elif kind == CYLINDER:
                half[i] = (p["radius"], p["radius"], (p["z1"] - p["z0"]) / 2)
            else:
                half[i], yaw[i] = p["radii"], p["yaw"]
        return centers, half, yaw

    def __len__(self) -> int:
        return len(self.kinds)


def _local_frame(origin, dirs, center, yaw):
    """Origin and directions in a solid's frame (translated to ``center``, rotated by -yaw about z).

    ``center`` (3,) or (M, 3) and ``yaw`` scalar or (M,) broadcast against ``dirs`` (M, 3).
    Returns two tuples of three arrays (x, y, z components): origin and directions.
    """
    c, s = np.cos(yaw), np.sin(yaw)
    center = np.asarray(center, dtype=np.float64)
    rx, ry, rz = origin[0] - center[..., 0], origin[1] - center[..., 1], origin[2] - center[..., 2]
    dx, dy, dz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    return (c * rx + s * ry, -s * rx + c * ry, rz), (c * dx + s * dy, -s * dx + c * dy, dz)


def intersect_box(origin, dirs, center, half, yaw):
    """Ray/oriented-box hits for rays from ``origin`` (3,) along ``dirs`` (M, 3) (unit or not).

    ``center`` (3,)|(M, 3), ``half`` sizes (3,)|(M, 3), ``yaw`` scalar|(M,): one box, or one per ray.
    Returns (t (M,) in units of |dir| with inf for a miss, |cos incidence| (M,) for unit dirs).
    """
    # slab test written per axis on 1-D arrays: reductions over a length-3 axis are slow in numpy
    o, d = _local_frame(origin, dirs, center, yaw)
    half = np.asarray(half, dtype=np.float64)
    near, far = [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(3):
            dk = np.where(np.abs(d[k]) < _EPS, _EPS, d[k])
            t1 = (-half[..., k] - o[k]) / dk
            t2 = (half[..., k] - o[k]) / dk
            near.append(np.minimum(t1, t2))
            far.append(np.maximum(t1, t2))
    tmin = np.maximum(np.maximum(near[0], near[1]), near[2])
    tmax = np.minimum(np.minimum(far[0], far[1]), far[2])
    hit = (tmax >= tmin) & (tmin > 1e-3)
    t = np.where(hit, tmin, np.inf)
    # the face hit is the slab whose entry distance is the largest
    cos = np.where(tmin == near[0], np.abs(d[0]), np.where(tmin == near[1], np.abs(d[1]), np.abs(d[2])))
    return t, cos


def intersect_cylinder(origin, dirs, center, z0, z1, radius):
    """Ray/vertical capped cylinder hits; parameters scalar/(3,) or one per ray. Returns (t, |cos|) as :func:`intersect_box`."""
    center = np.asarray(center, dtype=np.float64)
    ox, oy, oz = origin[0] - center[..., 0], origin[1] - center[..., 1], origin[2]
    dx, dy, dz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    a = dx * dx + dy * dy
    b = 2.0 * (ox * dx + oy * dy)
    c = ox * ox + oy * oy - radius * radius
    disc = b * b - 4.0 * a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * np.maximum(a, _EPS))
    z_side = oz + t_side * dz
    side_ok = (disc > 0) & (t_side > 1e-3) & (z_side >= z0) & (z_side <= z1)
    t_side = np.where(side_ok, t_side, np.inf)
    ts = np.where(side_ok, t_side, 0.0)
    cos_side = np.abs((ox + ts * dx) * dx + (oy + ts * dy) * dy) / radius
    # top cap, seen from above
    with np.errstate(divide="ignore", invalid="ignore"):
        t_top = np.where(dz < -_EPS, (z1 - oz) / np.where(dz < -_EPS, dz, -1.0), np.inf)
        px, py = ox + t_top * dx, oy + t_top * dy
    top_ok = np.isfinite(t_top) & (t_top > 1e-3) & (px * px + py * py <= radius * radius)
    t_top = np.where(top_ok, t_top, np.inf)
    use_top = t_top < t_side
    return np.where(use_top, t_top, t_side), np.where(use_top, np.abs(dz), cos_side)


def intersect_ellipsoid(origin, dirs, center, radii, yaw):
    """Ray/ellipsoid hits; parameters one solid or one per ray. Returns (t, |cos|) as :func:`intersect_box`."""
    o, d = _local_frame(origin, dirs, center, yaw)
    radii = np.asarray(radii, dtype=np.float64)
    os_ = [o[k] / radii[..., k] for k in range(3)]
    ds = [d[k] / radii[..., k] for k in range(3)]
    a = ds[0] * ds[0] + ds[1] * ds[1] + ds[2] * ds[2]
    b = 2.0 * (ds[0] * os_[0] + ds[1] * os_[1] + ds[2] * os_[2])
    c = os_[0] * os_[0] + os_[1] * os_[1] + os_[2] * os_[2] - 1.0
    disc = b * b - 4.0 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
    ok = (disc > 0) & (t > 1e-3)
    t = np.where(ok, t, np.inf)
    tt = np.where(ok, t, 0.0)
    # normal = gradient of the implicit surface at the hit
    n = [(os_[k] + tt * ds[k]) / radii[..., k] for k in range(3)]
    norm = np.maximum(np.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]), _EPS)
    cos = np.abs(n[0] * d[0] + n[1] * d[1] + n[2] * d[2]) / norm
    return t, cos


@dataclass
class Hits:
    """Per-ray result of :func:`cast`, arrays of shape (rows, cols).

    ``t`` float64 range in metres (inf: no return), ``solid`` int32 index into the scene's solids
    (-1 ground, -2 nothing), ``cos`` float64 |cos| of the incidence angle.
    """

    t: np.ndarray
    solid: np.ndarray
    cos: np.ndarray


def _angular_windows(scene: Scene, origin, max_range: float):
    """For each solid within ``max_range``: (index, elevation lo/hi, azimuth lo/hi) radians bounding it.

    Uses the solid's oriented bounding box: the azimuth extent of a convex footprint seen from
    outside is spanned by its corners; elevation is bounded with the footprint's nearest and
    farthest horizontal distances. Conservative, so no hit is ever culled.
    """
    centers, half, yaw = scene.bounding_boxes()
    c, s = np.cos(yaw), np.sin(yaw)
    rel = centers - origin
    # footprint corners relative to the origin, (K, 4, 2)
    sx = np.array([1, 1, -1, -1])[None, :] * half[:, :1]
    sy = np.array([1, -1, 1, -1])[None, :] * half[:, 1:2]
    cx = rel[:, :1] + c[:, None] * sx - s[:, None] * sy
    cy = rel[:, 1:2] + s[:, None] * sx + c[:, None] * sy
    rho_max = np.sqrt(cx * cx + cy * cy).max(axis=1)
    # nearest horizontal distance: origin in the box's local frame
    qx = np.abs(-c * rel[:, 0] - s * rel[:, 1]) - half[:, 0]
    qy = np.abs(s * rel[:, 0] - c * rel[:, 1]) - half[:, 1]
    rho_min = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    inside = (qx <= 0) & (qy <= 0)
    z_lo, z_hi = rel[:, 2] - half[:, 2], rel[:, 2] + half[:, 2]
    el_hi = np.where(z_hi >= 0, np.arctan2(z_hi, rho_min), np.arctan2(z_hi, rho_max))
    el_lo = np.where(z_lo < 0, np.arctan2(z_lo, rho_min), np.arctan2(z_lo, rho_max))
    ref = np.arctan2(rel[:, 1], rel[:, 0])
    delta = (np.arctan2(cy, cx) - ref[:, None] + np.pi) % (2 * np.pi) - np.pi
    az_lo = np.where(inside, -10.0, ref + delta.min(axis=1))
    az_hi = np.where(inside, 10.0, ref + delta.max(axis=1))
    near = np.nonzero(np.hypot(rho_min, np.minimum(np.abs(z_lo), np.abs(z_hi)) * (z_lo * z_hi > 0)) < max_range)[0]
    return near, el_lo[near], el_hi[near], az_lo[near], az_hi[near]


def cast(scene: Scene, origin, elevations, azimuths, max_range: float, rng: np.random.Generator) -> Hits:
    """Cast the grid of rays ``elevations`` (rows,) x ``azimuths`` (cols,) radians from ``origin``.

    ``azimuths`` must be evenly spaced and increasing (a rotating sensor's columns, world frame).
    ``rng`` decides which rays pass through porous solids (foliage). Returns :class:`Hits`.
    """
    origin = np.asarray(origin, dtype=np.float64)
    elevations = np.asarray(elevations, np.float64)
    azimuths = np.asarray(azimuths, np.float64)
    rows, cols = len(elevations), len(azimuths)
    step = (azimuths[-1] - azimuths[0]) / max(cols - 1, 1)
    ce, se = np.cos(elevations), np.sin(elevations)
    dirs = np.empty((rows, cols, 3))
    dirs[:, :, 0] = ce[:, None] * np.cos(azimuths)[None, :]
    dirs[:, :, 1] = ce[:, None] * np.sin(azimuths)[None, :]
    dirs[:, :, 2] = se[:, None]

    # ground plane z = 0
    dz = dirs[:, :, 2]
    with np.errstate(divide="ignore"):
        t_ground = np.where(dz < -_EPS, -origin[2] / np.where(dz < -_EPS, dz, -1.0), np.inf)
    t_best = np.where(t_ground <= max_range, t_ground, np.inf)
    solid = np.where(np.isfinite(t_best), -1, -2).astype(np.int32)
    cos_best = np.abs(dz).copy()

    if len(scene):
        _cast_solids(scene, origin, dirs, elevations, azimuths[0], step, max_range, rng, t_best, solid, cos_best)
    return Hits(t=t_best, solid=solid, cos=cos_best)


_PAIRS_PER_CHUNK = 300_000  # (ray, solid) pairs tested at once: bounds the temporaries to ~100 MB


def _cast_solids(scene, origin, dirs, elevations, az0, step, max_range, rng, t_best, solid, cos_best):
    """Test every solid against the rays in its angular window, all solids batched; updates the buffers in place."""
    rows, cols = t_best.shape
    ids, el_lo, el_hi, az_lo, az_hi = _angular_windows(scene, origin, max_range)
    # rows in each window: a contiguous run of the beams sorted by elevation
    by_elevation = np.argsort(elevations, kind="stable")
    sorted_el = elevations[by_elevation]
    r0 = np.searchsorted(sorted_el, el_lo - 1e-3, side="left")
    r1 = np.searchsorted(sorted_el, el_hi + 1e-3, side="right")
    # columns: a run of azimuth steps, wrapping around
    c0 = np.floor((az_lo - az0) / step).astype(np.int64) - 1
    n_cols = np.minimum(np.ceil((az_hi - az0) / step).astype(np.int64) + 1 - c0 + 1, cols)
    n_rows = np.maximum(r1 - r0, 0)
    n_pairs = n_rows * n_cols
    keep = n_pairs > 0
    ids, r0, c0, n_cols, n_pairs = ids[keep], r0[keep], c0[keep], n_cols[keep], n_pairs[keep]

    kinds = np.asarray(scene.kinds)
    porosity = np.asarray(scene.porosity, dtype=np.float64)
    params = _stacked_params(scene)
    t_flat, solid_flat, cos_flat = t_best.reshape(-1), solid.reshape(-1), cos_best.reshape(-1)
    dirs_flat = dirs.reshape(-1, 3)
    ends = np.cumsum(n_pairs)
    start = 0
    while start < len(ids):
        # a chunk of whole solids holding about _PAIRS_PER_CHUNK pairs (at least one solid)
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + _PAIRS_PER_CHUNK, side="right")))
        chunk = slice(start, stop)
        counts = n_pairs[chunk]
        total = int(counts.sum())
        pair_solid = np.repeat(ids[chunk], counts)
        k = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        width = np.repeat(n_cols[chunk], counts)
        row = by_elevation[np.repeat(r0[chunk], counts) + k // width]
        col = (np.repeat(c0[chunk], counts) + k % width) % cols
        flat = row * cols + col
        d = dirs_flat[flat]
        t = np.full(total, np.inf)
        cos = np.zeros(total)
        pair_kind = kinds[pair_solid]
        for kind, fn in ((BOX, _batch_box), (CYLINDER, _batch_cylinder), (ELLIPSOID, _batch_ellipsoid)):
            pick = np.nonzero(pair_kind == kind)[0]
            if len(pick):
                t[pick], cos[pick] = fn(origin, d[pick], params, pair_solid[pick])
        # foliage and mesh fences let some rays through
        t[rng.random(total) < porosity[pair_solid]] = np.inf
        hit = np.nonzero(t < t_flat[flat])[0]
        if len(hit):
            np.minimum.at(t_flat, flat[hit], t[hit])
            win = hit[t[hit] == t_flat[flat[hit]]]
            solid_flat[flat[win]] = pair_solid[win]
            cos_flat[flat[win]] = cos[win]
        start = stop


def _stacked_params(scene) -> dict:
    """Every solid's geometry as arrays indexed by solid id (unused entries zero)."""
    n = len(scene)
    center = np.array([p["center"] for p in scene.params], dtype=np.float64).reshape(n, 3)
    half, radii, yaw = np.zeros((n, 3)), np.ones((n, 3)), np.zeros(n)
    z0, z1, radius = np.zeros(n), np.zeros(n), np.ones(n)
    for i, (kind, p) in enumerate(zip(scene.kinds, scene.params)):
        if kind == BOX:
            half[i], yaw[i] = p["half"], p["yaw"]
        elif kind == CYLINDER:
            z0[i], z1[i], radius[i] = p["z0"], p["z1"], p["radius"]
        else:
            radii[i], yaw[i] = p["radii"], p["yaw"]
    return dict(center=center, half=half, radii=radii, yaw=yaw, z0=z0, z1=z1, radius=radius)


def _batch_box(origin, d, params, ids):
    return intersect_box(origin, d, params["center"][ids], params["half"][ids], params["yaw"][ids])


def _batch_cylinder(origin, d, params, ids):
    return intersect_cylinder(origin, d, params["center"][ids], params["z0"][ids], params["z1"][ids], params["radius"][ids])


def _batch_ellipsoid(origin, d, params, ids):
    return intersect_ellipsoid(origin, d, params["center"][ids], params["radii"][ids], params["yaw"][ids])
