"""A Kinect-like RGB-D camera looking into a :mod:`pcseg.synth.room`: :func:`depth_frame`.

The camera is a 640x480 pinhole (fx = fy = 525 px, like the Kinect/PrimeSense defaults) in the
Open3D/OpenCV camera frame (x right, y down, z forward). Depth noise follows the Kinect error
model of Nguyen et al. (2012), sigma(z) = 1.2 mm + 1.9 mm * (z - 0.4 m)^2, quantised to
millimetres, with holes at glass, grazing angles, depth edges, beyond 4.5 m and at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.synth.raycast import BOX, CYLINDER, intersect_box, intersect_cylinder, intersect_ellipsoid
from pcseg.synth.room import (  # noqa: F401  (INDOOR_CLASS_NAMES, build_room re-exported: the indoor API in one place)
    FLOOR, GLASS_LABEL, INDOOR_CLASS_NAMES, SHELL_SOLIDS, Room, build_room, inside_any,
)

@dataclass
class DepthFrame:
    """One RGB-D frame with exact labels.

    Attributes:
        depth: uint16 (H, W) depth in ``1 / depth_scale`` metres (millimetres); 0 = no return.
        color: uint8 (H, W, 3) RGB.
        labels: uint16 (H, W) ScanNet raw (NYU40) id of the surface each pixel sees (also where
            depth has a hole).
        instance: uint16 (H, W) object instance id (0 for walls, floor, ceiling).
        intrinsics: dict with ``width``, ``height``, ``fx``, ``fy``, ``cx``, ``cy`` (pixels).
        depth_scale: raw depth units per metre (1000).
        pose: float64 (4, 4) camera-to-world transform (camera frame: x right, y down, z forward).
        true_depth: float64 (H, W) noise-free depth along the optical axis in metres (inf = none).
        room: the :class:`Room` rendered.
    """

    depth: np.ndarray
    color: np.ndarray
    labels: np.ndarray
    instance: np.ndarray
    intrinsics: dict
    depth_scale: float
    pose: np.ndarray
    true_depth: np.ndarray
    room: Room


def camera_json(intrinsics: dict) -> dict:
    """Open3D's PinholeCameraIntrinsic JSON (column-major ``intrinsic_matrix``), as plain data."""
    fx, fy, cx, cy = (float(intrinsics[k]) for k in ("fx", "fy", "cx", "cy"))
    return {"width": int(intrinsics["width"]), "height": int(intrinsics["height"]),
            "intrinsic_matrix": [fx, 0.0, 0.0, 0.0, fy, 0.0, cx, cy, 1.0]}


def camera_pose(rng, room: Room) -> np.ndarray:
    """A camera-to-world 4x4 pose standing in free floor space, looking into the room, pitched down."""
    sx, sy, h = room.size
    for _ in range(200):
        pos = np.array([rng.uniform(0.4, sx - 0.4), rng.uniform(0.4, sy - 0.4), rng.uniform(1.1, min(1.8, h - 0.3))])
        if inside_any(room.scene, pos, margin=0.25):
            continue
        break
    centre = np.array([sx / 2, sy / 2])
    yaw = np.arctan2(*(centre - pos[:2])[::-1]) + rng.normal(0, 0.6)
    pitch = -rng.uniform(0.1, 0.55)
    forward = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, pos
    return pose


def render(room: Room, pose: np.ndarray, intrinsics: dict):
    """Exact per-pixel ray casting of ``room`` from a camera at ``pose`` (camera-to-world 4x4).

    Returns ``(depth (H, W) float64 metres along the optical axis (inf: nothing),
    solid (H, W) int32 index into the room's solids (-1: nothing), cos (H, W) |cos incidence|,
    world (H, W, 3) float64 hit points)``. Each solid is tested only against the pixel
    rectangle its bounding box projects to.
    """
    width, height = int(intrinsics["width"]), int(intrinsics["height"])
    fx, fy, cx, cy = (float(intrinsics[k]) for k in ("fx", "fy", "cx", "cy"))
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    cam_dirs = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], axis=-1)  # z = 1: t is depth
    rot, origin = pose[:3, :3], pose[:3, 3]
    world_dirs = cam_dirs @ rot.T
    # the shell (solids 0-5: floor, ceiling, walls x=0, x=sx, y=0, y=sy) seen from inside is
    # where each ray leaves the interior box: one pass instead of six box tests over the image
    exits = []
    for k in range(3):
        dk = world_dirs[..., k]
        with np.errstate(divide="ignore"):
            exits.append(np.where(dk > 0, (room.size[k] - origin[k]) / np.where(dk > 0, dk, 1.0),
                                  np.where(dk < 0, -origin[k] / np.where(dk < 0, dk, -1.0), np.inf)))
    exits = np.stack(exits, axis=-1)
    axis = exits.argmin(axis=-1)
    depth = np.take_along_axis(exits, axis[..., None], -1)[..., 0]
    positive = np.take_along_axis(world_dirs, axis[..., None], -1)[..., 0] > 0
    solid = np.array([[2, 3], [4, 5], [0, 1]], dtype=np.int32)[axis, positive.astype(int)]
    cos = np.abs(np.take_along_axis(world_dirs, axis[..., None], -1)[..., 0]) / np.linalg.norm(world_dirs, axis=-1)
    scene = room.scene
    centers, half, yaw = scene.bounding_boxes()
    corner_signs = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], dtype=np.float64)
    for i in range(SHELL_SOLIDS, len(scene)):
        c, s = np.cos(yaw[i]), np.sin(yaw[i])
        local = corner_signs * half[i]
        corners = centers[i] + np.stack([c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1], local[:, 2]], 1)
        cam = (corners - origin) @ rot  # world -> camera
        if np.all(cam[:, 2] <= 1e-6):
            continue  # behind the camera
        if np.any(cam[:, 2] <= 1e-6):
            u0, u1, v0, v1 = 0, width - 1, 0, height - 1
        else:
            pu, pv = fx * cam[:, 0] / cam[:, 2] + cx, fy * cam[:, 1] / cam[:, 2] + cy
            u0, u1 = max(int(np.floor(pu.min())) - 1, 0), min(int(np.ceil(pu.max())) + 1, width - 1)
            v0, v1 = max(int(np.floor(pv.min())) - 1, 0), min(int(np.ceil(pv.max())) + 1, height - 1)
            if u0 > u1 or v0 > v1:
                continue
        d = world_dirs[v0:v1 + 1, u0:u1 + 1].reshape(-1, 3)
        kind, p = scene.kinds[i], scene.params[i]
        if kind == BOX:
            t, cs = intersect_box(origin, d, p["center"], p["half"], p["yaw"])
        elif kind == CYLINDER:
            t, cs = intersect_cylinder(origin, d, p["center"], p["z0"], p["z1"], p["radius"])
        else:
            t, cs = intersect_ellipsoid(origin, d, p["center"], p["radii"], p["yaw"])
        t = t.reshape(v1 - v0 + 1, u1 - u0 + 1)
        window = depth[v0:v1 + 1, u0:u1 + 1]
        better = t < window
        window[better] = t[better]
        solid[v0:v1 + 1, u0:u1 + 1][better] = i
        # the intersectors' cosine is for unit directions; ours have z = 1 in the camera frame
        cos[v0:v1 + 1, u0:u1 + 1][better] = (cs / np.linalg.norm(d, axis=1)).reshape(t.shape)[better]
    world = origin + depth[..., None] * world_dirs
    return depth, solid, cos, world


def depth_frame(seed: int, *, room: Room | None = None, pose: np.ndarray | None = None, width: int = 640, height: int = 480,
                fx: float = 525.0, fy: float = 525.0, noise: bool = True, max_depth: float = 4.5) -> DepthFrame:
    """One RGB-D frame of a random room drawn from ``seed`` (or of ``room`` from ``pose``).

    Args:
        seed: any int; the same seed and options give identical images.
        room: a :func:`build_room` room to reuse (frames of one scene); default: ``build_room(seed)``.
        pose: camera-to-world 4x4 (camera frame x right, y down, z forward); default: drawn.
        width, height, fx, fy: pinhole camera in pixels; the principal point is the image centre
            ((width - 1) / 2, (height - 1) / 2).
        noise: Kinect-like depth noise and holes, colour noise (False: exact depth, no holes).
        max_depth: metres; farther surfaces give no depth (Kinect: about 4.5 m).

    Returns:
        :class:`DepthFrame` (uint16 depth in millimetres, uint8 RGB, uint16 labels and instances,
        intrinsics dict, pose, noise-free depth).
    """
    if not (16 <= int(width) <= 4096 and 16 <= int(height) <= 4096):
        raise PcsegValueError(f"width and height must be in [16, 4096] pixels, got {width}x{height}")
    if not (fx > 0 and fy > 0):
        raise PcsegValueError(f"fx and fy must be positive, got fx={fx}, fy={fy}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xCA3E]))
    room = build_room(seed) if room is None else room
    pose = camera_pose(rng, room) if pose is None else np.asarray(pose, dtype=np.float64)
    intrinsics = {"width": int(width), "height": int(height), "fx": float(fx), "fy": float(fy),
                  "cx": (int(width) - 1) / 2.0, "cy": (int(height) - 1) / 2.0}
    true_depth, solid, cos, world = render(room, pose, intrinsics)
    hit = solid >= 0
    labels_of = np.asarray(room.scene.labels, dtype=np.int64)
    labels = np.where(hit, labels_of[np.maximum(solid, 0)], 0).astype(np.uint16)
    instance = np.where(hit, np.asarray(room.scene.instances)[np.maximum(solid, 0)], 0).astype(np.uint16)
    depth_scale = 1000.0

    z = true_depth.copy()
    valid = hit & (z <= max_depth) & (z >= 0.4)
    if noise:
        sigma = 0.0012 + 0.0019 * (np.where(valid, z, 0.4) - 0.4) ** 2
        z = z + rng.normal(0.0, 1.0, z.shape) * sigma
        hole_p = np.full(z.shape, 0.003)
        hole_p += (cos < 0.15) * 0.7  # grazing incidence
        hole_p[labels == GLASS_LABEL] += 0.75  # glass
        # depth edges: the projector's shadow and mixed pixels leave holes next to jumps
        padded = np.pad(np.where(hit, true_depth, 10.0), 1, mode="edge")
        jump = np.zeros(z.shape)
        for dv in (0, 1, 2):
            for du in (0, 1, 2):
                jump = np.maximum(jump, np.abs(padded[dv:dv + z.shape[0], du:du + z.shape[1]] - np.where(hit, true_depth, 10.0)))
        hole_p += (jump > 0.05 * np.maximum(true_depth, 0.5)) * 0.6
        valid &= rng.random(z.shape) >= hole_p
    depth = np.where(valid, np.clip(np.round(z * depth_scale), 1, 65535), 0).astype(np.uint16)

    color = _shade(room, solid, cos, world, pose, rng if noise else None)
    return DepthFrame(depth=depth, color=color, labels=labels, instance=instance, intrinsics=intrinsics,
                      depth_scale=depth_scale, pose=pose, true_depth=np.where(hit, true_depth, np.inf), room=room)


def _shade(room: Room, solid, cos, world, pose, rng) -> np.ndarray:
    """uint8 (H, W, 3) colour: each solid's colour, Lambert shading from a ceiling light, floor grain."""
    colors = np.asarray(room.colors, dtype=np.float64)
    base = np.where((solid >= 0)[..., None], colors[np.maximum(solid, 0)], 0.0)
    labels = np.asarray(room.scene.labels)[np.maximum(solid, 0)]
    # wooden floor boards: stripes along x with a slow grain
    board = 0.9 + 0.1 * np.sin(world[..., 1] * 2 * np.pi / 0.18) * np.sin(world[..., 0] * 3.0 + world[..., 1] * 7.0)
    base = np.where((labels == FLOOR)[..., None], base * board[..., None], base)
    light = np.array([room.size[0] / 2, room.size[1] / 2, room.size[2] - 0.05])
    dist = np.linalg.norm(world - light, axis=-1)
    shading = 0.45 + 0.55 * np.clip(cos, 0, 1) * np.clip(2.5 / np.maximum(dist, 0.5), 0, 1.2)
    rgb = base * shading[..., None]
    if rng is not None:
        rgb = rgb + rng.normal(0.0, 0.015, rgb.shape)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
