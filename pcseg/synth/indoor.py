"""Indoor rooms seen by a Kinect-like RGB-D camera: :func:`depth_frame`.

A room is a box (floor at z = 0) with doors, windows and pictures on its walls and furniture
made of boxes and ellipsoids: tables, chairs, sofas, beds, bookshelves, cabinets. Labels are
ScanNet's raw NYU40 ids (``LabelMap.builtin("scannet")``); the ceiling gets NYU40's 22, which
ScanNet's 20-class benchmark ignores, exactly as for real ScanNet scans.

The camera is a 640x480 pinhole (fx = fy = 525 px, like the Kinect/PrimeSense defaults) in the
Open3D/OpenCV camera frame (x right, y down, z forward). Depth noise follows the Kinect error
model of Nguyen et al. (2012), sigma(z) = 1.2 mm + 1.9 mm * (z - 0.4 m)^2, quantised to
millimetres, with holes at glass, grazing angles, depth edges, beyond 4.5 m and at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.synth.raycast import BOX, CYLINDER, Scene, intersect_box, intersect_cylinder, intersect_ellipsoid

# ScanNet raw ids (NYU40)
WALL, FLOOR, CABINET, BED, CHAIR, SOFA, TABLE, DOOR, WINDOW, BOOKSHELF, PICTURE, CEILING = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 22
INDOOR_CLASS_NAMES = {
    WALL: "wall", FLOOR: "floor", CABINET: "cabinet", BED: "bed", CHAIR: "chair", SOFA: "sofa", TABLE: "table",
    DOOR: "door", WINDOW: "window", BOOKSHELF: "bookshelf", PICTURE: "picture", CEILING: "ceiling",
}
# base colours (RGB in [0, 1]) each object's colour is drawn around
_PALETTE = {
    WALL: (0.85, 0.83, 0.78), FLOOR: (0.55, 0.40, 0.28), CEILING: (0.93, 0.93, 0.92), DOOR: (0.60, 0.45, 0.30),
    WINDOW: (0.65, 0.80, 0.95), TABLE: (0.50, 0.35, 0.22), CHAIR: (0.30, 0.30, 0.35), SOFA: (0.35, 0.40, 0.55),
    BED: (0.80, 0.78, 0.70), BOOKSHELF: (0.45, 0.32, 0.20), CABINET: (0.75, 0.75, 0.72), PICTURE: (0.60, 0.30, 0.30),
}
_GLASS = WINDOW  # glass returns no depth most of the time
_WALL_THICKNESS = 0.2
_SHELL_SOLIDS = 6  # build_room adds floor, ceiling and four walls first


@dataclass
class Room:
    """A room's interior size (metres) and the solids in it (walls included)."""

    size: np.ndarray  # (3,) x extent, y extent, height; the interior is [0, sx] x [0, sy] x [0, h]
    scene: Scene
    colors: list  # per solid RGB in [0, 1]


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


class _RoomBuilder:
    def __init__(self, rng, size):
        self.rng, self.size = rng, size
        self.scene = Scene()
        self.colors = []
        self.footprints = []  # (x0, y0, x1, y1) of furniture, to avoid overlaps
        self.next_instance = 1

    def color(self, label):
        base = np.array(_PALETTE[label])
        return np.clip(base * self.rng.uniform(0.7, 1.2) + self.rng.normal(0, 0.06, 3), 0, 1)

    def box(self, center, size, yaw, label, instance, color):
        self.scene.add_box(center, size, yaw, label, instance)
        self.colors.append(color)

    def ellipsoid(self, center, radii, yaw, label, instance, color):
        self.scene.add_ellipsoid(center, radii, yaw, label, instance)
        self.colors.append(color)

    def new_instance(self):
        self.next_instance += 1
        return self.next_instance - 1

    def shell(self):
        sx, sy, h = self.size
        w = _WALL_THICKNESS
        wall_color = self.color(WALL)
        self.box([sx / 2, sy / 2, -w / 2], [sx + 2 * w, sy + 2 * w, w], 0, FLOOR, 0, self.color(FLOOR))
        self.box([sx / 2, sy / 2, h + w / 2], [sx + 2 * w, sy + 2 * w, w], 0, CEILING, 0, self.color(CEILING))
        self.box([-w / 2, sy / 2, h / 2], [w, sy, h], 0, WALL, 0, wall_color)
        self.box([sx + w / 2, sy / 2, h / 2], [w, sy, h], 0, WALL, 0, wall_color)
        self.box([sx / 2, -w / 2, h / 2], [sx, w, h], 0, WALL, 0, wall_color)
        self.box([sx / 2, sy + w / 2, h / 2], [sx, w, h], 0, WALL, 0, wall_color)

    def on_wall(self, wall: int, along: float, width: float, z0: float, z1: float, depth: float, label, instance, color):
        """A flat box on the inside of wall ``wall`` (0: x=0, 1: x=sx, 2: y=0, 3: y=sy), protruding ``depth``."""
        sx, sy, _ = self.size
        zc, hz = (z0 + z1) / 2, z1 - z0
        if wall == 0:
            self.box([depth / 2, along, zc], [depth, width, hz], 0, label, instance, color)
        elif wall == 1:
            self.box([sx - depth / 2, along, zc], [depth, width, hz], 0, label, instance, color)
        elif wall == 2:
            self.box([along, depth / 2, zc], [width, depth, hz], 0, label, instance, color)
        else:
            self.box([along, sy - depth / 2, zc], [width, depth, hz], 0, label, instance, color)

    def free(self, x0, y0, x1, y1, margin=0.1):
        sx, sy, _ = self.size
        if x0 < 0 or y0 < 0 or x1 > sx or y1 > sy:
            return False
        return all(x1 + margin <= a0 or x0 - margin >= a1 or y1 + margin <= b0 or y0 - margin >= b1
                   for a0, b0, a1, b1 in self.footprints)

    def place(self, length, depth, against_wall: bool):
        """Find a free spot for a footprint ``length`` x ``depth``; returns (x, y, yaw) or None.

        Against a wall the object's local -y side touches the wall (its front faces the room).
        """
        sx, sy, _ = self.size
        for _ in range(40):
            if against_wall:
                wall = int(self.rng.integers(4))
                span = sy if wall < 2 else sx
                if span < length + 0.2:
                    continue
                a = self.rng.uniform(length / 2 + 0.05, span - length / 2 - 0.05)
                off = depth / 2 + 0.02
                x, y, yaw = [(off, a, -np.pi / 2), (sx - off, a, np.pi / 2), (a, off, 0.0), (a, sy - off, np.pi)][wall]
            else:
                x, y = self.rng.uniform(0.5, sx - 0.5), self.rng.uniform(0.5, sy - 0.5)
                yaw = self.rng.choice([0.0, np.pi / 2]) + self.rng.normal(0, 0.15)
            c, s = abs(np.cos(yaw)), abs(np.sin(yaw))
            hx, hy = (c * length + s * depth) / 2, (s * length + c * depth) / 2
            if self.free(x - hx, y - hy, x + hx, y + hy):
                self.footprints.append((x - hx, y - hy, x + hx, y + hy))
                return x, y, yaw
        return None

    def parts(self, x, y, yaw, parts, label):
        """Add boxes given in the object's frame: each (cx, cy, cz, lx, ly, lz)."""
        inst, color = self.new_instance(), self.color(label)
        c, s = np.cos(yaw), np.sin(yaw)
        for cx, cy, cz, lx, ly, lz in parts:
            self.box([x + c * cx - s * cy, y + s * cx + c * cy, cz], [lx, ly, lz], yaw, label, inst,
                     np.clip(color * self.rng.uniform(0.85, 1.1), 0, 1))
        return inst

    def table(self, x, y, yaw, length, depth):
        h, top = self.rng.uniform(0.7, 0.78), 0.04
        lx, ly, leg = length / 2 - 0.06, depth / 2 - 0.06, 0.05
        legs = [(sx_ * lx, sy_ * ly, (h - top) / 2, leg, leg, h - top) for sx_ in (-1, 1) for sy_ in (-1, 1)]
        self.parts(x, y, yaw, [(0, 0, h - top / 2, length, depth, top), *legs], TABLE)
        return h

    def chair(self, x, y, yaw):
        w, seat_h = self.rng.uniform(0.42, 0.5), self.rng.uniform(0.43, 0.48)
        back_h = self.rng.uniform(0.35, 0.5)
        leg = 0.035
        legs = [(sx_ * (w / 2 - 0.03), sy_ * (w / 2 - 0.03), seat_h / 2, leg, leg, seat_h) for sx_ in (-1, 1) for sy_ in (-1, 1)]
        self.parts(x, y, yaw, [(0, 0, seat_h, w, w, 0.05), (0, -w / 2 + 0.02, seat_h + back_h / 2, w, 0.04, back_h), *legs],
                   CHAIR)

    def sofa(self, x, y, yaw, length):
        d, seat_h, back_h = self.rng.uniform(0.8, 0.95), self.rng.uniform(0.4, 0.48), self.rng.uniform(0.75, 0.9)
        arm = 0.18
        self.parts(x, y, yaw, [(0, 0.05, seat_h / 2, length - 2 * arm, d - 0.1, seat_h),
                               (0, -d / 2 + 0.1, back_h / 2, length, 0.2, back_h),
                               (-(length - arm) / 2, 0, 0.3, arm, d, 0.6), ((length - arm) / 2, 0, 0.3, arm, d, 0.6)], SOFA)

    def bed(self, x, y, yaw, width, length):
        inst = self.parts(x, y, yaw, [(0, 0, 0.18, width, length, 0.36), (0, 0.02, 0.45, width - 0.05, length - 0.1, 0.18),
                                      (0, -length / 2 + 0.04, 0.55, width, 0.08, 1.1)], BED)
        c, s = np.cos(yaw), np.sin(yaw)
        py = -length / 2 + 0.35
        self.ellipsoid([x - s * py, y + c * py, 0.6], [width * 0.35, 0.2, 0.08], yaw, BED, inst, self.color(BED))

    def bookshelf(self, x, y, yaw, length):
        h, d = self.rng.uniform(1.2, 2.2), self.rng.uniform(0.28, 0.4)
        n = int(h // 0.35)
        parts = [(0, -d / 2 + 0.01, h / 2, length, 0.02, h), (-length / 2 + 0.01, 0, h / 2, 0.02, d, h),
                 (length / 2 - 0.01, 0, h / 2, 0.02, d, h)]
        parts += [(0, 0, k * h / n + 0.01, length, d, 0.02) for k in range(n + 1)]
        for k in range(n):  # rows of books, set back from the front edge by a random amount
            fill = self.rng.uniform(0.3, 0.95)
            bh = self.rng.uniform(0.18, 0.28)
            parts.append(((fill - 1) * length / 2, -0.02, k * h / n + 0.02 + bh / 2, fill * (length - 0.06), d - 0.08, bh))
        self.parts(x, y, yaw, parts, BOOKSHELF)

    def cabinet(self, x, y, yaw, length):
        h, d = self.rng.uniform(0.5, 1.0), self.rng.uniform(0.4, 0.55)
        self.parts(x, y, yaw, [(0, 0, h / 2, length, d, h), (0, d / 2, h * 0.8, length * 0.3, 0.03, 0.03)], CABINET)


def build_room(seed: int) -> Room:
    """A random furnished room drawn from ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1D00]))
    size = np.array([rng.uniform(3.0, 7.0), rng.uniform(3.0, 7.0), rng.uniform(2.4, 3.2)])
    b = _RoomBuilder(rng, size)
    b.shell()
    sx, sy, h = size
    # doors, windows and pictures on the walls
    for wall in rng.permutation(4):
        span = sy if wall < 2 else sx
        used = []
        for label, count in ((DOOR, rng.integers(0, 2)), (WINDOW, rng.integers(0, 3)), (PICTURE, rng.integers(0, 3))):
            for _ in range(count):
                width = {DOOR: rng.uniform(0.8, 1.0), WINDOW: rng.uniform(0.8, 2.0), PICTURE: rng.uniform(0.3, 1.0)}[label]
                a = rng.uniform(width / 2 + 0.1, max(width / 2 + 0.11, span - width / 2 - 0.1))
                if a + width / 2 > span or any(abs(a - u) < (width + w) / 2 + 0.1 for u, w in used):
                    continue
                used.append((a, width))
                if label == DOOR:
                    z0, z1, depth = 0.0, rng.uniform(2.0, min(2.2, h - 0.1)), 0.03
                elif label == WINDOW:
                    z0 = rng.uniform(0.7, 1.0)
                    z0, z1, depth = z0, min(h - 0.2, z0 + rng.uniform(1.0, 1.6)), 0.02
                else:
                    z0 = rng.uniform(1.2, 1.6)
                    z0, z1, depth = z0, z0 + width * rng.uniform(0.6, 1.0), 0.025
                    z1 = min(z1, h - 0.1)
                inst = b.new_instance()
                b.on_wall(int(wall), a, width, z0, z1, depth, label, inst, b.color(label))
                if label == DOOR:  # keep the floor in front of a door free
                    d0 = 0.9
                    rect = [(0, a - width / 2, d0, a + width / 2), (sx - d0, a - width / 2, sx, a + width / 2),
                            (a - width / 2, 0, a + width / 2, d0), (a - width / 2, sy - d0, a + width / 2, sy)][int(wall)]
                    b.footprints.append(rect)
    # furniture: big pieces against walls, tables with chairs in the open
    if rng.random() < 0.5:
        w, l = rng.choice([0.9, 1.4, 1.6]), rng.uniform(1.9, 2.1)
        spot = b.place(w, l, against_wall=True)
        if spot:
            b.bed(*spot, w, l)
    for _ in range(rng.integers(0, 2) + (rng.random() < 0.5)):
        length = rng.uniform(1.5, 2.4)
        spot = b.place(length, 0.95, against_wall=True)
        if spot:
            b.sofa(*spot, length)
    for _ in range(rng.integers(0, 3)):
        length = rng.uniform(0.6, 1.6)
        spot = b.place(length, 0.4, against_wall=True)
        if spot:
            b.bookshelf(*spot, length)
    for _ in range(rng.integers(0, 3)):
        length = rng.uniform(0.5, 1.5)
        spot = b.place(length, 0.55, against_wall=True)
        if spot:
            b.cabinet(*spot, length)
    for _ in range(rng.integers(1, 3)):
        length, depth = rng.uniform(0.8, 2.0), rng.uniform(0.6, 1.0)
        spot = b.place(length + 1.0, depth + 1.0, against_wall=False)  # room for chairs around it
        if not spot:
            continue
        x, y, yaw = spot
        b.table(x, y, yaw, length, depth)
        c, s = np.cos(yaw), np.sin(yaw)
        for k in range(rng.integers(1, 5)):
            side = (-1, 1)[k % 2]
            along = (k // 2 - 0.5) * length * 0.5 if rng.random() < 0.7 else 0.0
            ly = side * (depth / 2 + 0.3)
            b.chair(x + c * along - s * ly, y + s * along + c * ly, yaw + (np.pi if side > 0 else 0.0) + rng.normal(0, 0.2))
    for _ in range(rng.integers(0, 3)):  # stray chairs
        spot = b.place(0.5, 0.5, against_wall=False)
        if spot:
            b.chair(spot[0], spot[1], rng.uniform(0, 2 * np.pi))
    return Room(size=size, scene=b.scene, colors=b.colors)


def camera_pose(rng, room: Room) -> np.ndarray:
    """A camera-to-world 4x4 pose standing in free floor space, looking into the room, pitched down."""
    sx, sy, h = room.size
    for _ in range(200):
        pos = np.array([rng.uniform(0.4, sx - 0.4), rng.uniform(0.4, sy - 0.4), rng.uniform(1.1, min(1.8, h - 0.3))])
        if _inside_any(room.scene, pos, margin=0.25):
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


def _inside_any(scene: Scene, point, margin: float) -> bool:
    for kind, p, label in zip(scene.kinds, scene.params, scene.labels):
        if label in (WALL, FLOOR, CEILING):
            continue
        rel = point - p["center"]
        if kind == BOX:
            c, s = np.cos(p["yaw"]), np.sin(p["yaw"])
            local = np.array([c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], rel[2]])
            if np.all(np.abs(local) <= p["half"] + margin):
                return True
        elif np.linalg.norm(rel) < np.max(p.get("radii", [p.get("radius", 0)])) + margin:
            return True
    return False


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
    for k, (lo_solid, hi_solid) in enumerate(((2, 3), (4, 5), (0, 1))):
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
    for i in range(_SHELL_SOLIDS, len(scene)):
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
        hole_p[labels == _GLASS] += 0.75  # glass
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
