"""Airborne LiDAR tiles: an oscillating-mirror scanner flown over procedural terrain.

:func:`airborne_tile` draws a square tile from a seed: terrain with slopes and hills, roads,
buildings with flat, gable, hip and shed roofs, in 40% of the tiles a hall 24-70 m wide
(wider than the ground estimate's window, often leaving the tile), trees of varied height, crown
shape and density (several returns per pulse through canopy; some beside buildings with crowns
over the roofs), bushes, facade points on building edges, water (few, weak returns), power
lines on towers, cars (ASPRS 1, "other"), a few noise points and sometimes a cut-away void.
Labels are ASPRS codes (use ``LabelMap.builtin("asprs")``). The scene is 2.5-D (height fields
plus wires), scanned along zig-zag mirror lines with the footprint displaced by the scan angle.
Only numpy is needed.
"""

from __future__ import annotations

import numpy as np

from pcseg.io.pointcloud import PointCloud

GROUND, LOW_VEG, MED_VEG, HIGH_VEG, BUILDING, NOISE, WATER, WIRE, TOWER, OTHER = 2, 3, 4, 5, 6, 7, 9, 14, 15, 1


def _terrain(rng, size):
    """Height function z(x, y) (metres) with a tilt up to 25% and a few hills."""
    tilt = rng.normal(0, 0.08, 2).clip(-0.25, 0.25)
    hills = [(rng.uniform(0, size, 2), rng.uniform(15, 60), rng.normal(0, 4)) for _ in range(rng.integers(1, 5))]

    def height(x, y):
        z = tilt[0] * x + tilt[1] * y
        for (cx, cy), radius, amp in hills:
            z = z + amp * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius ** 2))
        return z

    return height


def _roof(kind, u, v, half_w, half_l, eave, rise):
    """Roof height over the footprint, local axes u (width) and v (length), |u| <= half_w."""
    if kind == "flat":
        return eave + np.zeros_like(u)
    if kind == "gable":
        return eave + rise * (1 - np.abs(u) / half_w)
    if kind == "shed":
        return eave + rise * (u + half_w) / (2 * half_w)
    # hip: pyramid-like, ridge along v
    return eave + rise * np.minimum(1 - np.abs(u) / half_w, (half_l - np.abs(v)) / half_w).clip(0, 1)


def airborne_tile(seed: int, size: float | None = None, density: float | None = None, *,
                  origin=None) -> PointCloud:
    """One synthetic airborne tile drawn from ``seed``.

    Args:
        seed: any int; the same seed and options give the identical tile.
        size: tile side in metres (default drawn in 60..110 m).
        density: pulses per m^2 (default drawn log-uniformly in 2..30); canopy adds returns.
        origin: float64 (3,) world position of the tile's corner (default a random UTM-like
            easting/northing and elevation, so readers see georeferenced coordinates).
    Returns:
        :class:`PointCloud`: xyz float32 (N, 3) metres local to ``offset`` (float64), intensity
        float32 (N,) 16-bit-like units, labels int64 (N,) ASPRS codes.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xA1B0]))
    size = float(rng.uniform(60, 110) if size is None else size)
    density = float(np.exp(rng.uniform(np.log(2), np.log(30))) if density is None else density)
    height = _terrain(rng, size)
    cell = 0.25
    n = int(np.ceil(size / cell))
    gx, gy = np.meshgrid((np.arange(n) + 0.5) * cell, (np.arange(n) + 0.5) * cell, indexing="ij")
    ground = height(gx, gy)
    surface = ground.copy()              # first-surface height (buildings, water; not trees)
    label = np.full((n, n), GROUND, np.int64)
    material = rng.uniform(0.25, 0.45) * np.ones((n, n))  # reflectance for intensity
    # roads: straight strips, darker asphalt
    for _ in range(rng.integers(0, 3)):
        angle, offset, width = rng.uniform(0, np.pi), rng.uniform(0, size), rng.uniform(5, 12)
        dist = np.abs((gx - size / 2) * np.sin(angle) - (gy - size / 2) * np.cos(angle) - (offset - size / 2))
        material[dist < width / 2] = rng.uniform(0.08, 0.18)
    # water: a pond or a river band, flat at the lowest terrain of its area
    if rng.random() < 0.4:
        cx, cy = rng.uniform(0, size, 2)
        if rng.random() < 0.5:
            water = (gx - cx) ** 2 / rng.uniform(8, 25) ** 2 + (gy - cy) ** 2 / rng.uniform(8, 25) ** 2 < 1
        else:
            angle = rng.uniform(0, np.pi)
            water = np.abs((gx - cx) * np.sin(angle) - (gy - cy) * np.cos(angle)) < rng.uniform(4, 12)
        if water.any():
            level = np.percentile(ground[water], 20)
            ground[water] = np.minimum(ground[water], level - 0.5)
            surface[water], label[water], material[water] = level, WATER, 0.03
    # buildings: rotated rectangles with varied roofs
    occupied = label == WATER
    for _ in range(int(rng.integers(0, 12) * size * size / 8000)):
        cx, cy = rng.uniform(5, size - 5, 2)
        half_w, half_l = rng.uniform(3, 10), rng.uniform(4, 20)
        angle = rng.uniform(0, np.pi)
        u = (gx - cx) * np.cos(angle) + (gy - cy) * np.sin(angle)
        v = -(gx - cx) * np.sin(angle) + (gy - cy) * np.cos(angle)
        inside = (np.abs(u) < half_w) & (np.abs(v) < half_l)
        if not inside.any() or (inside & occupied).sum() > 0.05 * inside.sum():
            continue
        base = ground[inside].min()
        kind = rng.choice(["flat", "gable", "hip", "shed"], p=[0.35, 0.3, 0.2, 0.15])
        roof = _roof(kind, u[inside], v[inside], half_w, half_l, base + rng.uniform(2.8, 14), rng.uniform(1, 5))
        surface[inside], label[inside] = roof, BUILDING
        material[inside] = rng.uniform(0.1, 0.6)
        occupied |= inside
    # a hall or warehouse, often wider than the ground window and reaching over the tile edge
    more = np.random.default_rng(np.random.SeedSequence([int(seed), 0xA1B1]))  # draws added later
    if more.random() < 0.4:
        _hall(more, gx, gy, size, ground, surface, label, material, occupied)
    # trees and bushes: crowns as (z_bottom, z_top) height fields with a per-tree leaf density
    crown_top = np.full((n, n), -np.inf)
    crown_bottom = np.full((n, n), np.inf)
    leaf = np.zeros((n, n))
    stands = rng.integers(0, 5)
    centres = [rng.uniform(0, size, 2) for _ in range(stands)]
    for k in range(int(rng.integers(10, 200) * size * size / 8000)):
        if centres and rng.random() < 0.7:
            c = centres[rng.integers(len(centres))] + rng.normal(0, 10, 2)
        else:
            c = rng.uniform(0, size, 2)
        beside = more.random() < 0.3 and (label == BUILDING).any()
        if beside:  # a tree beside a building whose crown may reach over the roof
            edge = np.argwhere(label == BUILDING)
            i, j = edge[more.integers(len(edge))]
            c = np.array([gx[i, j], gy[i, j]]) + more.normal(0, 4, 2)
        ci, cj = min(max(int(c[0] / cell), 0), n - 1), min(max(int(c[1] / cell), 0), n - 1)
        if beside and occupied[ci, cj]:
            continue
        bush = rng.random() < 0.25
        top = rng.uniform(0.5, 2.5) if bush else rng.uniform(4, 28)
        radius = rng.uniform(0.5, 1.8) if bush else rng.uniform(1.2, min(7.0, 0.2 * top + 2))
        i0, j0 = int(c[0] / cell), int(c[1] / cell)
        r = int(radius / cell) + 1
        sl = (slice(max(i0 - r, 0), min(i0 + r + 1, n)), slice(max(j0 - r, 0), min(j0 + r + 1, n)))
        if sl[0].start >= sl[0].stop or sl[1].start >= sl[1].stop:
            continue
        d2 = ((gx[sl] - c[0]) ** 2 + (gy[sl] - c[1]) ** 2) / radius ** 2
        inside = (d2 < 1) & ~(occupied[sl] & ~beside | (label[sl] == WATER))
        g0 = ground[sl]
        base_frac = 0.1 if bush else rng.uniform(0.25, 0.6)
        cone = rng.random() < 0.35
        depth = np.sqrt(np.clip(1 - d2, 0, 1)) if not cone else np.clip(1 - np.sqrt(d2), 0, 1)
        zt = g0 + top * (base_frac + (1 - base_frac) * (depth if cone else 0.5 + 0.5 * depth))
        zb = g0 + top * base_frac + (0 if cone else top * (1 - base_frac) * 0.5 * (1 - depth))
        crown_top[sl] = np.where(inside, np.maximum(crown_top[sl], zt), crown_top[sl])
        crown_bottom[sl] = np.where(inside, np.minimum(crown_bottom[sl], zb), crown_bottom[sl])
        leaf[sl] = np.where(inside, np.maximum(leaf[sl], rng.uniform(0.15, 0.8)), leaf[sl])
    # pulses along zig-zag mirror lines (flight along +y), footprint displaced by the scan angle
    pulses = int(density * size * size)
    half_fov = np.radians(rng.uniform(10, 25))
    altitude = rng.uniform(600, 1500)
    px = rng.uniform(0, size, pulses)
    py = rng.uniform(0, size, pulses)
    # the flight line runs along y somewhere within the swath; tan(scan angle) of each pulse
    flight_x = size / 2 + rng.uniform(-1, 1) * min(altitude * np.tan(half_fov), 300.0)
    angle = (px - flight_x) / altitude

    def sample(grid, x, y):
        i = np.clip((x / cell).astype(np.int64), 0, n - 1)
        j = np.clip((y / cell).astype(np.int64), 0, n - 1)
        return grid[i, j]

    xs, ys, zs, labels, refl = [], [], [], [], []

    def emit(x, y, z, lab, r):
        xs.append(x), ys.append(y), zs.append(z), labels.append(lab), refl.append(r)

    # first surface (ground, roof, water) hit; the footprint moves by height * tan(scan angle)
    zs0 = sample(surface, px, py)
    hx = px + (zs0 - sample(ground, px, py)) * angle
    lab0 = sample(label, hx, py)
    z_hit = sample(surface, hx, py)
    top = sample(crown_top, hx, py)
    bottom = np.maximum(sample(crown_bottom, hx, py), z_hit)  # crowns over roofs end at the roof
    dens = sample(leaf, hx, py)
    in_crown = np.isfinite(top) & (top > z_hit)
    remaining = np.ones(pulses, bool)
    # canopy returns: first near the crown top, later ones deeper, each with the leaf density
    for k in range(3):
        hit = in_crown & remaining & (rng.random(pulses) < dens * (1.0 if k == 0 else 0.7))
        depth = rng.uniform(0, 0.15 if k == 0 else 1.0, pulses)
        with np.errstate(invalid="ignore"):
            z = np.where(in_crown, top - depth * (top - np.where(np.isfinite(bottom), bottom, top)), 0.0)
        emit(hx[hit], py[hit], z[hit], np.full(int(hit.sum()), -1), np.full(int(hit.sum()), 0.5))
        remaining &= ~(hit & (rng.random(pulses) < 0.45))  # part of the energy goes on
    # last return on the surface below; water drops most returns
    keep = remaining | (rng.random(pulses) < 0.5)
    keep &= ~((lab0 == WATER) & (rng.random(pulses) < 0.7))
    emit(hx[keep], py[keep], z_hit[keep], lab0[keep], sample(material, hx, py)[keep])
    # walls: points on the facades (building cells beside a non-building cell), as many as the
    # scan angles let the pulses see (a per-tile share; some deliveries have almost none)
    bld = np.pad(label == BUILDING, 1, mode="edge")
    interior = bld[1:-1, 1:-1] & bld[:-2, 1:-1] & bld[2:, 1:-1] & bld[1:-1, :-2] & bld[1:-1, 2:]
    facade = np.argwhere((label == BUILDING) & ~interior)
    if len(facade):
        fi, fj = facade[:, 0], facade[:, 1]
        rise = (surface[fi, fj] - ground[fi, fj]).clip(0, None)
        count = rng.poisson(density * cell * rise * more.uniform(0, 0.15))
        fi, fj, rise = np.repeat(fi, count), np.repeat(fj, count), np.repeat(rise, count)
        m = len(fi)
        emit(gx[fi, fj] + rng.uniform(-0.5, 0.5, m) * cell, gy[fi, fj] + rng.uniform(-0.5, 0.5, m) * cell,
             ground[fi, fj] + rng.uniform(0, 1, m) * rise, np.full(m, BUILDING), np.full(m, 0.3))
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    z = np.concatenate(zs)
    lab = np.concatenate(labels)
    r = np.concatenate(refl)
    g = sample(ground, x, y)
    # vegetation class by height above ground (ASPRS practice: low < 2 m, medium < 5 m, high above)
    veg = lab == -1
    hag = z - g
    lab[veg] = np.where(hag[veg] < 2, LOW_VEG, np.where(hag[veg] < 5, MED_VEG, HIGH_VEG))
    extra = [_power_line(rng, size, height, density), _cars(rng, size, height, density, label, cell)]
    for ex in extra:
        if ex is not None:
            x, y, z = np.concatenate([x, ex[0]]), np.concatenate([y, ex[1]]), np.concatenate([z, ex[2]])
            lab, r = np.concatenate([lab, ex[3]]), np.concatenate([r, ex[4]])
    inside = (x >= 0) & (x < size) & (y >= 0) & (y < size)
    if more.random() < 0.3:  # a void: part of the tile cut away (tile edges, clipped deliveries)
        a, c0 = more.uniform(0, np.pi), more.uniform(0, size, 2)
        across = (x - c0[0]) * np.cos(a) + (y - c0[1]) * np.sin(a)
        along = -(x - c0[0]) * np.sin(a) + (y - c0[1]) * np.cos(a)
        inside &= ~((np.abs(across) < more.uniform(5, 0.3 * size)) & (np.abs(along) < more.uniform(10, size)))
    x, y, z, lab, r = x[inside], y[inside], z[inside], lab[inside], r[inside]
    noise = rng.random(len(x)) < 2e-4
    z = z + rng.normal(0, 0.03, len(z)) + np.where(noise, rng.choice([-1, 1], len(z)) * rng.uniform(5, 40, len(z)), 0)
    lab = np.where(noise, NOISE, lab)
    order = np.argsort(np.floor(y * np.sqrt(density)) * 1e4 + x, kind="stable")  # file order: scan lines
    xyz = np.column_stack([x, y, z])[order]
    gain = rng.uniform(20000, 60000)
    intensity = np.clip(r[order] * gain * rng.uniform(0.8, 1.2, len(order)), 0, 65535)
    if origin is None:
        origin = np.array([rng.integers(3, 7) * 1e5 + rng.integers(0, 90000), rng.integers(40, 55) * 1e5 +
                           rng.integers(0, 90000), rng.uniform(0, 800)])
    origin = np.floor(np.asarray(origin, dtype=np.float64))
    low = np.floor(xyz.min(axis=0))
    return PointCloud(xyz=(xyz - low).astype(np.float32), intensity=intensity.astype(np.float32),
                      labels=lab[order].astype(np.int64), offset=origin + low, source=f"airborne_tile(seed={seed})")


def _hall(rng, gx, gy, size, ground, surface, label, material, occupied):
    """One large flat or low-pitched building (24-70 m wide, up to 90 m long, 4-28 m high) placed
    anywhere, so it often leaves the tile; it replaces what the smaller buildings put there."""
    cx, cy = rng.uniform(0, size, 2)
    half_w = rng.uniform(12, 35)
    half_l = rng.uniform(half_w, 45)
    angle = rng.uniform(0, np.pi)
    u = (gx - cx) * np.cos(angle) + (gy - cy) * np.sin(angle)
    v = -(gx - cx) * np.sin(angle) + (gy - cy) * np.cos(angle)
    inside = (np.abs(u) < half_w) & (np.abs(v) < half_l) & (label != WATER)
    if not inside.any():
        return
    kind = rng.choice(["flat", "gable", "shed"], p=[0.6, 0.25, 0.15])
    roof = _roof(kind, u[inside], v[inside], half_w, half_l, ground[inside].min() + rng.uniform(4, 28), rng.uniform(0.2, 2))
    surface[inside], label[inside] = roof, BUILDING
    material[inside] = rng.uniform(0.1, 0.6)
    occupied |= inside


def _power_line(rng, size, height, density):
    """Towers (15) and sagging conductors (14) across the tile, or None."""
    if rng.random() > 0.35:
        return None
    y0, y1 = rng.uniform(0, size, 2)
    tower_h = rng.uniform(15, 30)
    ends = np.array([[-5.0, y0], [size + 5.0, y1]])
    t = np.linspace(0, 1, max(int(size * np.sqrt(density) * 0.6), 20))
    xs, ys, zs, labs = [], [], [], []
    for offset in (-2.5, 0.0, 2.5):
        wx = ends[0, 0] + t * (ends[1, 0] - ends[0, 0])
        wy = ends[0, 1] + t * (ends[1, 1] - ends[0, 1]) + offset
        z_end = height(ends[:, 0], ends[:, 1]) + tower_h
        sag = rng.uniform(2, 5) * 4 * t * (1 - t)
        wz = z_end[0] + t * (z_end[1] - z_end[0]) - sag
        keep = rng.random(len(t)) < 0.8
        xs.append(wx[keep]), ys.append(wy[keep]), zs.append(wz[keep]), labs.append(np.full(int(keep.sum()), WIRE))
    mid = rng.uniform(0.3, 0.7)
    tx, ty = ends[0, 0] + mid * (ends[1, 0] - ends[0, 0]), ends[0, 1] + mid * (ends[1, 1] - ends[0, 1])
    m = int(max(30, density * 12))
    h = rng.uniform(0, 1, m)
    width = 3 * (1 - h) + 0.5
    px = tx + rng.uniform(-1, 1, m) * width / 2
    py = ty + rng.uniform(-1, 1, m) * width / 2
    xs.append(px), ys.append(py), zs.append(height(px, py) + h * tower_h), labs.append(np.full(m, TOWER))
    lab = np.concatenate(labs)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(zs), lab, np.full(len(lab), 0.4)


def _cars(rng, size, height, density, label, cell):
    """A few car-sized boxes on open ground, ASPRS 1 ("other"), or None."""
    count = int(rng.integers(0, 8))
    if count == 0:
        return None
    xs, ys, zs = [], [], []
    for _ in range(count):
        cx, cy = rng.uniform(3, size - 3, 2)
        if label[min(int(cx / cell), label.shape[0] - 1), min(int(cy / cell), label.shape[1] - 1)] != GROUND:
            continue
        m = int(density * 8)
        a = rng.uniform(0, np.pi)
        u, v = rng.uniform(-2.2, 2.2, m), rng.uniform(-0.9, 0.9, m)
        x, y = cx + u * np.cos(a) - v * np.sin(a), cy + u * np.sin(a) + v * np.cos(a)
        xs.append(x), ys.append(y), zs.append(height(x, y) + rng.uniform(1.2, 1.6) - 0.3 * (np.abs(u) > 1.5))
    if not xs:
        return None
    x = np.concatenate(xs)
    return x, np.concatenate(ys), np.concatenate(zs), np.full(len(x), OTHER), np.full(len(x), 0.5)


def write_airborne_tiles(out, names, seed: int = 0, suffix: str = ".laz") -> list:
    """Write one synthetic tile per name as ``out/<name><suffix>`` (LAS 1.4, point format 6, ASPRS
    ``classification``, intensity, a millimetre scale); tile ``k`` uses seed ``seed + k``.
    Returns the written paths (each written atomically)."""
    from pathlib import Path

    import laspy

    from pcseg.atomic import atomic_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, name in enumerate(names):
        cloud = airborne_tile(seed + k)
        world = cloud.world_xyz()
        header = laspy.LasHeader(version="1.4", point_format=6)
        header.offsets = np.floor(world.min(axis=0))
        header.scales = np.array([0.001, 0.001, 0.001])
        header.generating_software = "pcseg.synth.airborne"
        las = laspy.LasData(header)
        las.x, las.y, las.z = world[:, 0], world[:, 1], world[:, 2]
        las.intensity = cloud.intensity.astype(np.uint16)
        las.classification = cloud.labels.astype(np.uint8)
        las.return_number = np.ones(len(cloud), np.uint8)
        las.number_of_returns = np.ones(len(cloud), np.uint8)
        path = out / f"{name}{suffix}"
        with atomic_path(path) as tmp:
            las.write(str(tmp))
        paths.append(path)
    return paths
