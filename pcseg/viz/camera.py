"""View presets shared by both renderers, so Open3D and the numpy splat frame a cloud alike.

Coordinates follow the LiDAR convention (x forward, y left, z up); the presets also frame
indoor rooms sensibly. Bounds are robust (percentiles), so a few far points do not shrink
the dense part of a scan to a dot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcseg.errors import PcsegValueError

VIEWS = ("perspective", "bev")


@dataclass(frozen=True)
class Camera:
    """A look-at camera. ``eye``/``center``/``up``: float (3,) in the cloud's units (metres).

    ``projection`` is ``"perspective"`` (``fov_deg``: vertical field of view in degrees) or
    ``"ortho"`` (``half_height``: half the visible height in metres; the width follows the
    image's aspect ratio).
    """

    eye: tuple
    center: tuple
    up: tuple
    projection: str = "perspective"
    fov_deg: float = 60.0
    half_height: float = 10.0
    near: float = 0.1
    far: float = 1000.0


def robust_bounds(xyz: np.ndarray, pct: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) float64 (3,): per-axis ``pct`` and ``100 - pct`` percentiles."""
    xyz = np.asarray(xyz, dtype=np.float64)
    if len(xyz) == 0:
        return np.zeros(3), np.ones(3)
    lo, hi = np.percentile(xyz, [pct, 100 - pct], axis=0)
    return lo, hi


def preset(xyz: np.ndarray, view: str = "perspective", aspect: float = 1.6, north_up: bool = False) -> Camera:
    """A camera framing ``xyz`` (N, 3) for an image of width / height = ``aspect``.

    ``"perspective"``: from behind (-x), to the right (-y) and above, looking at the robust
    centre. ``"bev"``: bird's-eye, orthographic, straight down, +x pointing up in the image.
    With ``north_up`` (map tiles: x east, y north, as airborne LAS/LAZ) the whole tile is framed
    the map way: BEV with +y (north) up and +x (east) to the right; perspective from the south,
    looking north and down at 40 degrees, as close as the whole tile's box allows.
    """
    if view not in VIEWS:
        raise PcsegValueError(f"view must be one of {VIEWS}, got {view!r}")
    if north_up:
        return _map_preset(np.asarray(xyz, dtype=np.float64), view, aspect)
    lo, hi = robust_bounds(xyz)
    center = (lo + hi) / 2
    extent = hi - lo
    size = float(max(extent[0], extent[1], extent[2], 1e-3))
    far = size * 10 + 100.0
    if view == "bev":
        # fit the robust x extent (image up) and y extent (image across) with a small margin
        half_height = max(extent[0] / 2, extent[1] / 2 / aspect, 1e-3) * 1.05
        top = float(hi[2] + size)
        return Camera(eye=(center[0], center[1], top), center=(center[0], center[1], float(lo[2])),
                      up=(1.0, 0.0, 0.0), projection="ortho", half_height=half_height,
                      near=0.01, far=float(top - lo[2] + size + 10))
    direction = np.array([-0.62, -0.38, 0.5])
    eye = center + direction * size * 0.75
    target = center + np.array([0.08 * size, 0.0, -0.1 * extent[2]])
    return Camera(eye=tuple(eye), center=tuple(target), up=(0.0, 0.0, 1.0), projection="perspective",
                  fov_deg=55.0, near=max(size * 1e-3, 0.01), far=far)


def _map_preset(xyz: np.ndarray, view: str, aspect: float) -> Camera:
    """North-up framing of a whole map tile (xy bounds in full, z robust against noise points)."""
    if len(xyz) == 0:
        xyz = np.zeros((1, 3))
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    lo[2], hi[2] = np.percentile(xyz[:, 2], [0.5, 99.5])
    center = (lo + hi) / 2
    extent = np.maximum(hi - lo, 1e-3)
    size = float(extent.max())
    if view == "bev":
        half_height = max(extent[1] / 2, extent[0] / 2 / aspect) * 1.03
        top = float(hi[2] + size)
        return Camera(eye=(center[0], center[1], top), center=(center[0], center[1], float(lo[2])),
                      up=(0.0, 1.0, 0.0), projection="ortho", half_height=half_height,
                      near=0.01, far=float(top - lo[2] + size + 10))
    elevation = np.radians(40.0)
    direction = np.array([0.0, -np.cos(elevation), np.sin(elevation)])
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    height = 200.0
    width = height * aspect

    def camera(distance):
        return Camera(eye=tuple(center + direction * distance), center=tuple(center), up=(0.0, 0.0, 1.0),
                      projection="perspective", fov_deg=45.0, near=max(distance * 1e-3, 0.01),
                      far=distance * 4 + size * 4 + 100.0)

    def fits(distance):
        u, v, depth, _ = project(corners, camera(distance), int(width), int(height))
        margin = 0.03
        return bool((depth > 0).all() and (u >= width * margin).all() and (u <= width * (1 - margin)).all()
                    and (v >= height * margin).all() and (v <= height * (1 - margin)).all())

    near_d, far_d = size * 0.05, size * 50 + 10.0
    for _ in range(40):  # the closest distance at which every corner of the box is in the image
        mid = (near_d + far_d) / 2
        near_d, far_d = (near_d, mid) if fits(mid) else (mid, far_d)
    return camera(far_d)


def is_map_tile(points) -> bool:
    """True for a cloud read from an airborne LAS/LAZ tile (framed north up by the renderers)."""
    source = str(getattr(points, "source", "") or "").lower()
    return source.endswith((".las", ".laz"))


def look_at_matrix(camera: Camera) -> np.ndarray:
    """float64 (4, 4) world -> camera transform (camera looks down its -z, y up)."""
    eye = np.asarray(camera.eye, dtype=np.float64)
    forward = np.asarray(camera.center, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(camera.up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-9:
        raise PcsegValueError("camera up vector is parallel to the viewing direction")
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = right, true_up, -forward
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def project(xyz: np.ndarray, camera: Camera, width: int, height: int):
    """Pixel coordinates of points: (u float64 (N,), v float64 (N,), depth float64 (N,),
    visible bool (N,)). u grows right, v grows down; depth is the distance along the view axis."""
    xyz = np.asarray(xyz, dtype=np.float64)
    m = look_at_matrix(camera)
    cam = xyz @ m[:3, :3].T + m[:3, 3]
    depth = -cam[:, 2]
    if camera.projection == "ortho":
        scale = (height / 2) / camera.half_height
        x_ndc, y_ndc = cam[:, 0] * scale, cam[:, 1] * scale
    else:
        focal = (height / 2) / np.tan(np.radians(camera.fov_deg) / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_ndc = cam[:, 0] / depth * focal
            y_ndc = cam[:, 1] / depth * focal
    u = width / 2 + x_ndc
    v = height / 2 - y_ndc
    visible = (depth > camera.near) & (depth < camera.far) & np.isfinite(u) & np.isfinite(v)
    return u, v, depth, visible
