"""Whole-room scans like ScanNet's reconstructed scenes: :func:`scene_scan`.

A ScanNet scene is a mesh fused from an RGB-D video walking around a room; its vertices form a
dense surface cloud of everything a camera saw, with colours averaged from the frames, small
registration errors, holes where nobody looked, and rarely a ceiling. Here a
:func:`~pcseg.synth.room_types.build_scan_room` room is seen from many hand-held camera poses
(exact ray casting, :func:`pcseg.synth.indoor.render`), the hits of all views are fused and
voxel-downsampled to one point per ``voxel_size`` voxel (2 cm by default), and the scan is
randomised: lighting (lights, exposure per view, white balance, gamma), colour noise, depth noise
and per-view registration drift, glass mostly missing, random holes, the ceiling dropped in most
scans, and the whole room turned by a random yaw and moved so its corner is near the origin
(ScanNet scenes are not axis-aligned). Labels are NYU40 ids (``LabelMap.builtin("scannet")``).
"""

from __future__ import annotations

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.synth.room import CEILING, FLOOR, GLASS_LABEL, SHELL_SOLIDS, Room

# the hand-held camera: 640x480 PrimeSense at a lower resolution (rays per view), same field of view
_FOV_FX = 525.0 / 640.0  # fx as a fraction of the image width


def camera_poses(room: Room, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """``count`` camera-to-world 4x4 poses (x right, y down, z forward) of a person walking
    through the free floor space of ``room``, at 0.9-1.8 m, looking around and mostly down."""
    sx, sy, h = room.size
    centers, half, yaw = room.scene.bounding_boxes()
    centers, half, yaw = centers[SHELL_SOLIDS:], half[SHELL_SOLIDS:], yaw[SHELL_SOLIDS:]
    poses = []
    for _ in range(count):
        for _attempt in range(100):
            pos = np.array([rng.uniform(0.3, sx - 0.3), rng.uniform(0.3, sy - 0.3), rng.uniform(0.9, min(1.8, h - 0.2))])
            rel = pos - centers
            c, s = np.cos(yaw), np.sin(yaw)
            local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], 1)
            if not np.any(np.all(np.abs(local) <= half + 0.15, axis=1)):
                break
        heading = rng.uniform(0, 2 * np.pi)
        pitch = -rng.uniform(0.05, 1.1) if rng.random() < 0.9 else rng.uniform(0.0, 0.4)
        forward = np.array([np.cos(pitch) * np.cos(heading), np.cos(pitch) * np.sin(heading), np.sin(pitch)])
        right = np.array([np.sin(heading), -np.cos(heading), 0.0])
        roll = rng.normal(0, 0.05)
        down = np.cross(forward, right)
        right, down = np.cos(roll) * right + np.sin(roll) * down, -np.sin(roll) * right + np.cos(roll) * down
        pose = np.eye(4)
        pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, pos
        poses.append(pose)
    return poses


def _floor_pattern(world: np.ndarray, kind: int) -> np.ndarray:
    """(M,) brightness factor of the floor at world points (M, 3): boards, tiles or carpet."""
    x, y = world[:, 0], world[:, 1]
    if kind == 0:  # wooden boards
        return 0.9 + 0.1 * np.sin(y * 2 * np.pi / 0.18) * np.sin(x * 3.0 + y * 7.0)
    if kind == 1:  # tiles with grout lines
        fx, fy = np.mod(x, 0.45), np.mod(y, 0.45)
        return np.where((fx < 0.01) | (fy < 0.01), 0.7, 1.0)
    return 0.95 + 0.05 * np.sin(x * 37.0) * np.sin(y * 41.0)  # carpet


def fuse_views(room: Room, rng: np.random.Generator, *, views: int, width: int = 240, noise: bool = True):
    """Hits of ``views`` camera poses fused into one cloud, in the room frame.

    Returns ``(xyz (M, 3) float64 metres, rgb (M, 3) float64 in [0, 1], solid (M,) int64 index of
    the solid each point lies on)``. With ``noise`` the colours get lighting jitter and noise and
    the points depth noise, per-view registration drift and holes at glass and grazing angles.
    """
    from pcseg.synth.indoor import render

    height = width * 3 // 4
    fx = _FOV_FX * width
    intrinsics = {"width": width, "height": height, "fx": fx, "fy": fx, "cx": (width - 1) / 2, "cy": (height - 1) / 2}
    colors = np.asarray(room.colors, dtype=np.float64)
    labels_of = np.asarray(room.scene.labels, dtype=np.int64)
    sx, sy, h = room.size
    n_lights = int(rng.integers(1, 4))
    lights = np.stack([rng.uniform(0.2, 0.8, n_lights) * sx, rng.uniform(0.2, 0.8, n_lights) * sy,
                       np.full(n_lights, h - 0.05)], 1)
    ambient = rng.uniform(0.3, 0.6) if noise else 0.5
    floor_kind = int(rng.integers(3))
    balance = rng.uniform(0.88, 1.12, 3) if noise else np.ones(3)
    gamma = rng.uniform(0.8, 1.25) if noise else 1.0
    depth_sigma = rng.uniform(0.002, 0.006)
    drift = rng.uniform(0.002, 0.01)
    out_xyz, out_rgb, out_solid = [], [], []
    for pose in camera_poses(room, rng, views):
        depth, solid, cos, world = render(room, pose, intrinsics)
        keep = (solid >= 0) & (depth > 0.3) & (depth < 4.5)
        if noise:
            hole = np.where(cos < 0.12, 0.8, 0.02) + (labels_of[np.maximum(solid, 0)] == GLASS_LABEL) * 0.6
            keep &= rng.random(depth.shape) >= hole
        solid, cos, world, depth = solid[keep], cos[keep], world[keep], depth[keep]
        base = colors[solid]
        label = labels_of[solid]
        floor = label == FLOOR
        base[floor] *= _floor_pattern(world[floor], floor_kind)[:, None]
        dist = np.linalg.norm(world[:, None, :] - lights[None], axis=-1).min(axis=1)
        shade = ambient + (1 - ambient) * np.clip(cos, 0, 1) ** 0.5 * np.clip(2.0 / np.maximum(dist, 0.8), 0, 1.2)
        rgb = base * shade[:, None]
        if noise:
            rgb = rgb * rng.uniform(0.85, 1.15) * balance  # per-view auto exposure, scene white balance
            rgb = rgb + rng.normal(0, 0.02, rgb.shape)
            ray = (world - pose[:3, 3]) / np.maximum(depth, 1e-6)[:, None]
            world = world + ray * rng.normal(0, depth_sigma * (1 + 0.3 * depth ** 2))[:, None]
            world = world + rng.normal(0, drift, 3)  # this view's registration error
        out_xyz.append(world)
        out_rgb.append(np.clip(rgb, 0, 1) ** gamma)
        out_solid.append(solid.astype(np.int64))
    return np.concatenate(out_xyz), np.concatenate(out_rgb), np.concatenate(out_solid)


def voxel_pick(xyz: np.ndarray, voxel_size: float, rng: np.random.Generator) -> np.ndarray:
    """int64 (V,) sorted indices of one random point of ``xyz`` (M, 3) per voxel of edge ``voxel_size``."""
    order = rng.permutation(len(xyz))
    cells = np.floor(xyz[order] / voxel_size).astype(np.int64)
    cells -= cells.min(axis=0, initial=0)
    span = cells.max(axis=0, initial=0) + 1
    keys = (cells[:, 0] * span[1] + cells[:, 1]) * span[2] + cells[:, 2]  # one int per voxel
    _, first = np.unique(keys, return_index=True)
    return np.sort(order[first])


def _holes(xyz: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """bool (M,) points kept after cutting a few random blobs out of the surface (unscanned spots)."""
    keep = np.ones(len(xyz), dtype=bool)
    for _ in range(int(rng.integers(0, 10))):
        centre = xyz[rng.integers(len(xyz))]
        radius = rng.uniform(0.1, 0.6)
        keep &= np.linalg.norm(xyz - centre, axis=1) > radius
    return keep


def scene_scan(seed: int, *, voxel_size: float = 0.02, views: int | None = None, width: int = 240,
               noise: bool = True, frame: str = "random", kind: str | None = None, return_room: bool = False):
    """One reconstructed-room scan drawn from ``seed``, like a ScanNet scene.

    Args:
        seed: any int; the same seed and options give identical clouds.
        voxel_size: metres; one point per voxel of this edge is kept (ScanNet-like density: 0.02).
        views: camera poses fused (default: about 3 per square metre of floor, 24 to 90).
        width: pixels per view row (height = 3/4 of it; field of view of a 640x480 PrimeSense).
        noise: lighting/colour jitter, depth noise, registration drift, holes, glass and ceiling
            mostly missing. False: exact surface points, one neutral lighting, ceiling kept.
        frame: ``"random"``: turned by a random yaw about z and moved so the room's corner is near
            the origin (ScanNet's scenes are not axis-aligned); ``"room"``: the room frame
            (floor z = 0, interior [0, sx] x [0, sy]), for tests against the room's solids.
        kind: room kind (see :data:`pcseg.synth.room_types.ROOM_KINDS`), or None to draw one.
        return_room: also return the :class:`~pcseg.synth.room.Room` scanned.

    Returns:
        :class:`pcseg.io.PointCloud` with xyz float32 (N, 3) metres, rgb float32 (N, 3) in [0, 1],
        labels int64 (N,) NYU40 ids (ceiling 22, columns 38 and small props 40 are not benchmark
        classes), instance int64 (N,) (0 for walls, floor, ceiling); or ``(cloud, room)``.
    """
    from pcseg.io import PointCloud
    from pcseg.synth.room_types import build_scan_room

    if not voxel_size > 0:
        raise PcsegValueError(f"voxel_size must be > 0 metres, got {voxel_size}")
    if frame not in ("random", "room"):
        raise PcsegValueError(f"frame must be 'random' or 'room', got {frame!r}")
    if not 16 <= int(width) <= 1280:
        raise PcsegValueError(f"width must be in [16, 1280] pixels, got {width}")
    room, kind = build_scan_room(seed, kind)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5CA7]))
    if views is None:
        views = int(np.clip(3.0 * room.size[0] * room.size[1], 24, 90))
    if int(views) < 1:
        raise PcsegValueError(f"views must be >= 1, got {views}")
    xyz, rgb, solid = fuse_views(room, rng, views=int(views), width=int(width), noise=noise)
    labels = np.asarray(room.scene.labels, dtype=np.int64)[solid]
    instance = np.asarray(room.scene.instances, dtype=np.int64)[solid]
    keep = voxel_pick(xyz, voxel_size, rng)
    if noise:
        keep = keep[_holes(xyz[keep], rng)]
        if rng.random() < 0.85:  # ScanNet rarely has the ceiling
            keep = keep[labels[keep] != CEILING]
    xyz, rgb, labels, instance = xyz[keep], rgb[keep], labels[keep], instance[keep]
    if frame == "random":
        angle = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(angle), np.sin(angle)
        xyz = xyz @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
        shift = -xyz.min(axis=0) + np.array([*rng.uniform(-0.3, 0.3, 2), 0.0])
        shift[2] = rng.normal(0, 0.02)  # the floor stays near z = 0
        xyz = xyz + shift
    cloud = PointCloud(xyz=xyz.astype(np.float32), rgb=rgb.astype(np.float32), labels=labels, instance=instance,
                       source=f"scene_scan seed={int(seed)} ({kind})")
    return (cloud, room) if return_room else cloud
