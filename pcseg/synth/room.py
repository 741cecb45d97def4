"""Procedural furnished rooms for the RGB-D camera: :func:`build_room`.

A room is a box (floor at z = 0, interior [0, sx] x [0, sy] x [0, height]) with doors, windows
and pictures on its walls and furniture made of boxes and ellipsoids: tables, chairs, sofas,
beds, bookshelves, cabinets. Labels are ScanNet's raw NYU40 ids (``LabelMap.builtin("scannet")``);
the ceiling gets NYU40's 22, which ScanNet's 20-class benchmark ignores, as for real ScanNet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcseg.synth.raycast import BOX, Scene

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
GLASS_LABEL = WINDOW  # glass returns no depth most of the time
_WALL_THICKNESS = 0.2
SHELL_SOLIDS = 6  # build_room adds floor, ceiling and four walls first

@dataclass
class Room:
    """A room's interior size (metres) and the solids in it (walls included)."""

    size: np.ndarray  # (3,) x extent, y extent, height; the interior is [0, sx] x [0, sy] x [0, h]
    scene: Scene
    colors: list  # per solid RGB in [0, 1]


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


def inside_any(scene: Scene, point, margin: float) -> bool:
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
