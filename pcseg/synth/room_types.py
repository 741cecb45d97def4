"""Furnished rooms of several kinds with all 20 ScanNet benchmark classes: :func:`build_scan_room`.

Extends :mod:`pcseg.synth.room` (whose :func:`~pcseg.synth.room.build_room` stays as it is for
the RGB-D frames) with the classes it lacks (counter, desk, curtain, refrigerator, shower
curtain, toilet, sink, bathtub, otherfurniture), small ignored clutter on tables and floors
(NYU40 ``otherprop``, 40), room kinds with their own furniture programmes (bedroom, living
room, office, kitchen, bathroom, conference room), L-shaped rooms (a wall block in one corner),
and colours drawn from per-class palettes (domain randomisation). Labels are NYU40 ids, so
``LabelMap.builtin("scannet")`` maps them to the 20 benchmark classes.
"""

from __future__ import annotations

import numpy as np

from pcseg.synth.room import (
    BED, BOOKSHELF, CABINET, CEILING, CHAIR, DOOR, FLOOR, PICTURE, SOFA, TABLE, WALL, WINDOW, Room, _RoomBuilder,
)

COUNTER, DESK, CURTAIN, REFRIGERATOR, SHOWER_CURTAIN, TOILET, SINK, BATHTUB = 12, 14, 16, 24, 28, 33, 34, 36
OTHERFURNITURE, OTHERPROP, COLUMN = 39, 40, 38  # 40 and 38 are not benchmark classes (ignored)
ROOM_KINDS = ("bedroom", "living", "office", "kitchen", "bathroom", "conference")
# a few plausible base colours per class (RGB in [0, 1]); each object draws one and jitters it
_PALETTES = {
    WALL: [(0.88, 0.86, 0.80), (0.92, 0.92, 0.90), (0.80, 0.84, 0.78), (0.85, 0.78, 0.68), (0.70, 0.75, 0.82)],
    FLOOR: [(0.55, 0.40, 0.28), (0.45, 0.45, 0.47), (0.70, 0.62, 0.50), (0.30, 0.32, 0.38), (0.80, 0.78, 0.74)],
    CEILING: [(0.93, 0.93, 0.92)],
    DOOR: [(0.60, 0.45, 0.30), (0.90, 0.90, 0.88), (0.40, 0.28, 0.18)],
    WINDOW: [(0.65, 0.80, 0.95), (0.85, 0.88, 0.90), (0.50, 0.55, 0.60)],
    TABLE: [(0.50, 0.35, 0.22), (0.85, 0.85, 0.82), (0.30, 0.30, 0.30), (0.65, 0.50, 0.35)],
    DESK: [(0.55, 0.40, 0.25), (0.80, 0.80, 0.78), (0.35, 0.35, 0.38), (0.70, 0.58, 0.42)],
    CHAIR: [(0.20, 0.20, 0.22), (0.35, 0.40, 0.60), (0.60, 0.20, 0.20), (0.55, 0.40, 0.25), (0.75, 0.75, 0.75)],
    SOFA: [(0.35, 0.40, 0.55), (0.55, 0.50, 0.45), (0.25, 0.25, 0.25), (0.60, 0.25, 0.20), (0.75, 0.70, 0.60)],
    BED: [(0.80, 0.78, 0.70), (0.60, 0.65, 0.80), (0.90, 0.90, 0.92), (0.70, 0.55, 0.55)],
    BOOKSHELF: [(0.45, 0.32, 0.20), (0.85, 0.85, 0.82), (0.25, 0.22, 0.20)],
    CABINET: [(0.75, 0.75, 0.72), (0.50, 0.36, 0.24), (0.35, 0.35, 0.38), (0.88, 0.88, 0.85)],
    PICTURE: [(0.60, 0.30, 0.30), (0.30, 0.45, 0.60), (0.80, 0.70, 0.40), (0.20, 0.20, 0.20)],
    COUNTER: [(0.85, 0.85, 0.82), (0.30, 0.30, 0.32), (0.60, 0.55, 0.48), (0.70, 0.60, 0.45)],
    CURTAIN: [(0.85, 0.82, 0.70), (0.40, 0.45, 0.65), (0.65, 0.35, 0.30), (0.55, 0.60, 0.50), (0.90, 0.90, 0.90)],
    REFRIGERATOR: [(0.92, 0.92, 0.92), (0.70, 0.72, 0.74), (0.20, 0.20, 0.22)],
    SHOWER_CURTAIN: [(0.90, 0.90, 0.92), (0.60, 0.80, 0.85), (0.85, 0.75, 0.80)],
    TOILET: [(0.95, 0.95, 0.95), (0.90, 0.90, 0.88)],
    SINK: [(0.95, 0.95, 0.95), (0.75, 0.76, 0.78)],
    BATHTUB: [(0.95, 0.95, 0.95), (0.92, 0.92, 0.88)],
    OTHERFURNITURE: [(0.50, 0.40, 0.30), (0.30, 0.30, 0.33), (0.80, 0.80, 0.78), (0.25, 0.45, 0.35), (0.60, 0.55, 0.20)],
    OTHERPROP: [(0.80, 0.20, 0.20), (0.20, 0.50, 0.80), (0.90, 0.85, 0.30), (0.15, 0.15, 0.15), (0.90, 0.90, 0.90)],
    COLUMN: [(0.88, 0.86, 0.80)],
}
# room kind -> (x size range, y size range) in metres
_SIZES = {"bedroom": ((2.8, 5.0), (3.0, 5.5)), "living": ((3.5, 7.5), (3.5, 7.0)), "office": ((3.0, 8.0), (3.0, 7.0)),
          "kitchen": ((2.5, 5.5), (2.5, 5.0)), "bathroom": ((1.7, 3.2), (1.8, 3.5)),
          "conference": ((4.0, 8.5), (3.5, 6.5))}


class _ScanRoomBuilder(_RoomBuilder):
    """The base builder plus the missing classes; colours from :data:`_PALETTES`."""

    def color(self, label):
        choices = _PALETTES[label]
        base = np.array(choices[int(self.rng.integers(len(choices)))])
        return np.clip(base * self.rng.uniform(0.75, 1.15) + self.rng.normal(0, 0.05, 3), 0, 1)

    def solid_parts(self, x, y, yaw, parts, label, inst=None):
        """Like ``parts`` but ``parts`` entries may be ("e", cx, cy, cz, rx, ry, rz) ellipsoids
        or ("c", cx, cy, z0, z1, r) cylinders; returns the instance id."""
        inst = self.new_instance() if inst is None else inst
        color = self.color(label)
        c, s = np.cos(yaw), np.sin(yaw)
        for part in parts:
            tone = np.clip(color * self.rng.uniform(0.9, 1.08), 0, 1)
            if part[0] == "e":
                _, cx, cy, cz, rx, ry, rz = part
                self.ellipsoid([x + c * cx - s * cy, y + s * cx + c * cy, cz], [rx, ry, rz], yaw, label, inst, tone)
            elif part[0] == "c":
                _, cx, cy, z0, z1, r = part
                self.scene.add_cylinder(x + c * cx - s * cy, y + s * cx + c * cy, z0, z1, r, label, inst)
                self.colors.append(tone)
            else:
                cx, cy, cz, lx, ly, lz = part
                self.box([x + c * cx - s * cy, y + s * cx + c * cy, cz], [lx, ly, lz], yaw, label, inst, tone)
        return inst

    # ---------------------------------------------------------------- the classes room.py lacks
    def counter(self, x, y, yaw, length, with_sink: bool):
        h, d = self.rng.uniform(0.86, 0.94), self.rng.uniform(0.55, 0.65)
        self.solid_parts(x, y, yaw, [(0, -0.02, (h - 0.04) / 2, length, d - 0.04, h - 0.04),
                                     (0, 0, h - 0.02, length + 0.02, d, 0.04)], COUNTER)
        if with_sink and length > 0.9:
            along = self.rng.uniform(-length / 2 + 0.4, length / 2 - 0.4)
            self.solid_parts(x, y, yaw, [(along, 0.02, h + 0.03, 0.55, 0.42, 0.06),
                                         ("c", along, -d / 2 + 0.1, h, h + 0.28, 0.02)], SINK)
        return h

    def desk(self, x, y, yaw, length, depth):
        h = self.rng.uniform(0.72, 0.77)
        side = self.rng.choice([-1, 1])
        parts = [(0, 0, h - 0.02, length, depth, 0.04),
                 (side * (length / 2 - 0.22), 0, (h - 0.04) / 2, 0.4, depth - 0.04, h - 0.04),  # drawer block
                 (-side * (length / 2 - 0.03), 0, (h - 0.04) / 2, 0.03, depth - 0.04, h - 0.04),
                 (0, -depth / 2 + 0.02, h * 0.6, length - 0.1, 0.02, h * 0.5)]  # modesty panel
        self.solid_parts(x, y, yaw, parts, DESK)
        return h

    def refrigerator(self, x, y, yaw):
        w, d, h = self.rng.uniform(0.6, 0.9), self.rng.uniform(0.62, 0.75), self.rng.uniform(1.5, 1.95)
        self.solid_parts(x, y, yaw, [(0, 0, h / 2, w, d, h), (w / 2 - 0.06, d / 2 + 0.02, h * 0.55, 0.03, 0.03, 0.5)],
                         REFRIGERATOR)

    def toilet(self, x, y, yaw):
        self.solid_parts(x, y, yaw, [(0, -0.18 + 0.09, 0.6, 0.42, 0.18, 0.38),  # tank
                                     (0, 0.12, 0.2, 0.26, 0.36, 0.4),  # base
                                     ("e", 0, 0.2, 0.36, 0.19, 0.26, 0.08)], TOILET)  # bowl and seat

    def pedestal_sink(self, x, y, yaw):
        self.solid_parts(x, y, yaw, [(0, 0.0, 0.82, 0.55, 0.42, 0.14), ("c", 0, -0.02, 0.0, 0.75, 0.08),
                                     ("c", 0, -0.15, 0.89, 1.05, 0.02)], SINK)

    def bathtub(self, x, y, yaw, length, width):
        h, t = self.rng.uniform(0.45, 0.6), 0.07
        self.solid_parts(x, y, yaw, [(0, 0, 0.04, length, width, 0.08),
                                     (0, -width / 2 + t / 2, h / 2, length, t, h), (0, width / 2 - t / 2, h / 2, length, t, h),
                                     (-length / 2 + t / 2, 0, h / 2, t, width, h), (length / 2 - t / 2, 0, h / 2, t, width, h)],
                         BATHTUB)
        return h

    def shower_curtain(self, x, y, yaw, length, offset):
        """A hanging sheet with folds ``offset`` metres in front of the object frame's origin."""
        z0, z1 = self.rng.uniform(0.5, 0.7), self.rng.uniform(1.9, 2.05)
        n = max(3, int(length / 0.12))
        cover = self.rng.uniform(0.4, 1.0)  # drawn part of the rail
        parts = [((k + 0.5) * length / n * cover - length / 2, offset + (0.03 if k % 2 else 0.0), (z0 + z1) / 2,
                  length / n * cover + 0.01, 0.015, z1 - z0) for k in range(n)]
        self.solid_parts(x, y, yaw, parts, SHOWER_CURTAIN)

    def curtain(self, wall: int, along: float, width: float, top: float, bottom: float):
        """Folded curtain panels hanging in front of wall ``wall`` around ``along`` (wall coordinate)."""
        n = max(3, int(width / 0.1))
        inst, color = self.new_instance(), self.color(CURTAIN)
        for k in range(n):
            a = along - width / 2 + (k + 0.5) * width / n
            depth = 0.04 + (0.05 if k % 2 else 0.0)
            self.on_wall(wall, a, width / n + 0.01, bottom, top, depth, CURTAIN, inst,
                         np.clip(color * self.rng.uniform(0.85, 1.05), 0, 1))

    def clutter(self, x, y, z, label=OTHERPROP, scale=1.0):
        """A small object standing at (x, y) on a surface at height z."""
        r = self.rng.uniform(0.05, 0.2) * scale
        kind = self.rng.integers(3)
        if kind == 0:
            part = (0, 0, z + r, r * 2 * self.rng.uniform(0.6, 1.4), r * 2 * self.rng.uniform(0.6, 1.4), 2 * r)
        elif kind == 1:
            part = ("e", 0, 0, z + r * 0.8, r, r * self.rng.uniform(0.6, 1.3), r * 0.8)
        else:
            part = ("c", 0, 0, z, z + r * self.rng.uniform(1.0, 3.0), r * 0.5)
        self.solid_parts(x, y, self.rng.uniform(0, np.pi), [part], label)

    def other_furniture(self, x, y, yaw):
        """Stands, stools, bins, carts: otherfurniture of random make."""
        kind = self.rng.integers(3)
        if kind == 0:
            w, d, h = self.rng.uniform(0.3, 0.9), self.rng.uniform(0.3, 0.6), self.rng.uniform(0.4, 1.1)
            self.solid_parts(x, y, yaw, [(0, 0, h / 2, w, d, h)], OTHERFURNITURE)
        elif kind == 1:
            r, h = self.rng.uniform(0.13, 0.22), self.rng.uniform(0.3, 0.7)
            self.solid_parts(x, y, yaw, [("c", 0, 0, 0.0, h, r)], OTHERFURNITURE)  # bin
        else:
            h, r = self.rng.uniform(0.45, 0.75), self.rng.uniform(0.15, 0.25)
            self.solid_parts(x, y, yaw, [("c", 0, 0, h - 0.05, h, r), ("c", 0, 0, 0.0, h - 0.05, 0.03),
                                         ("c", 0, 0, 0.0, 0.03, r * 0.9)], OTHERFURNITURE)  # stool

    def props_on(self, x, y, yaw, length, depth, top, count):
        c, s = np.cos(yaw), np.sin(yaw)
        for _ in range(count):
            a, b = self.rng.uniform(-0.4, 0.4) * length, self.rng.uniform(-0.35, 0.35) * depth
            self.clutter(x + c * a - s * b, y + s * a + c * b, top, scale=min(1.0, depth))


def _try(b, length, depth, wall=True):
    return b.place(length, depth, against_wall=wall)


def _wall_openings(b, rng, kind):
    """Doors, windows (with curtains), pictures on the walls, as room.build_room places them."""
    sx, sy, h = b.size
    doors = 0
    for wall in rng.permutation(4):
        span = sy if wall < 2 else sx
        used = []
        n_win = rng.integers(0, 2) if kind == "bathroom" else rng.integers(0, 3)
        wants = ((DOOR, int(doors == 0 or rng.random() < 0.25)), (WINDOW, n_win), (PICTURE, rng.integers(0, 3)))
        for label, count in wants:
            for _ in range(count):
                width = {DOOR: rng.uniform(0.8, 1.0), WINDOW: rng.uniform(0.6, 2.0), PICTURE: rng.uniform(0.3, 1.0)}[label]
                a = rng.uniform(width / 2 + 0.1, max(width / 2 + 0.11, span - width / 2 - 0.1))
                if a + width / 2 > span or any(abs(a - u) < (width + w) / 2 + 0.15 for u, w in used):
                    continue
                used.append((a, width + (0.5 if label == WINDOW else 0.0)))
                if label == DOOR:
                    z0, z1, depth = 0.0, rng.uniform(2.0, min(2.2, h - 0.1)), 0.03
                    doors += 1
                elif label == WINDOW:
                    z0 = rng.uniform(0.6, 1.0)
                    z1, depth = min(h - 0.2, z0 + rng.uniform(1.0, 1.6)), 0.02
                else:
                    z0 = rng.uniform(1.2, 1.6)
                    z1, depth = min(z0 + width * rng.uniform(0.6, 1.0), h - 0.1), 0.025
                b.on_wall(int(wall), a, width, z0, z1, depth, label, b.new_instance(), b.color(label))
                if label == WINDOW and rng.random() < 0.55:  # curtains on both sides of it (or across)
                    bottom = 0.02 if rng.random() < 0.5 else z0 - 0.1
                    top = min(h - 0.05, z1 + 0.15)
                    panel = rng.uniform(0.3, 0.6)
                    for side in (-1, 1):
                        centre = a + side * (width / 2 + panel / 2 - 0.05)
                        if panel / 2 < centre < span - panel / 2:
                            b.curtain(int(wall), centre, panel, top, bottom)
                    if bottom < 0.5:
                        b.footprints.append(_wall_rect(b, int(wall), a, width + 2 * panel, 0.15))
                if label == DOOR:  # keep the floor in front of a door free
                    b.footprints.append(_wall_rect(b, int(wall), a, width, 0.9))


def _wall_rect(b, wall, along, width, depth):
    sx, sy, _ = b.size
    lo, hi = along - width / 2, along + width / 2
    return [(0, lo, depth, hi), (sx - depth, lo, sx, hi), (lo, 0, hi, depth), (lo, sy - depth, hi, sy)][wall]


def _table_with_chairs(b, rng, length, depth, chairs):
    spot = _try(b, length + 1.0, depth + 1.0, wall=False)
    if not spot:
        return
    x, y, yaw = spot
    top = b.table(x, y, yaw, length, depth)
    b.props_on(x, y, yaw, length, depth, top, rng.integers(0, 4))
    c, s = np.cos(yaw), np.sin(yaw)
    per_side = max(1, int(length / 0.6))
    for k in range(chairs):
        side = (-1, 1)[k % 2]
        along = ((k // 2) % per_side - (per_side - 1) / 2) * length / per_side + rng.normal(0, 0.05)
        ly = side * (depth / 2 + rng.uniform(0.15, 0.4))
        b.chair(x + c * along - s * ly, y + s * along + c * ly, yaw + (np.pi if side > 0 else 0.0) + rng.normal(0, 0.25))


def _desk_with_chair(b, rng):
    length, depth = rng.uniform(1.0, 1.8), rng.uniform(0.55, 0.8)
    spot = _try(b, length, depth + 0.8)
    if not spot:
        return
    x, y, yaw = spot
    c, s = np.cos(yaw), np.sin(yaw)
    dy = -0.4  # the desk sits at the wall end of the reserved footprint
    top = b.desk(x - s * dy, y + c * dy, yaw, length, depth)
    b.props_on(x - s * dy, y + c * dy, yaw, length, depth, top, rng.integers(0, 4))
    if rng.random() < 0.85:
        cy = dy + depth / 2 + rng.uniform(0.1, 0.35)
        b.chair(x - s * cy, y + c * cy, yaw + np.pi + rng.normal(0, 0.4))


def _furnish(b, rng, kind):
    n = rng.integers
    if kind == "bedroom":
        w, l = rng.choice([0.9, 1.4, 1.6, 1.8]), rng.uniform(1.9, 2.1)
        if spot := _try(b, w, l):
            b.bed(*spot, w, l)
        for _ in range(n(0, 3)):
            if spot := _try(b, 0.5, 0.45):
                b.other_furniture(*spot)  # nightstands and the like
        for _ in range(n(0, 2)):
            if spot := _try(b, rng.uniform(0.8, 1.6), 0.6):
                b.cabinet(*spot, rng.uniform(0.8, 1.5))
        if rng.random() < 0.6:
            _desk_with_chair(b, rng)
    elif kind == "living":
        for _ in range(1 + n(0, 2)):
            length = rng.uniform(1.5, 2.4)
            if spot := _try(b, length, 0.95):
                b.sofa(*spot, length)
        for _ in range(n(0, 2)):
            if spot := _try(b, 1.0, 0.6, wall=False):
                top = b.table(*spot, 1.0, 0.6) if rng.random() < 0.5 else b.table(*spot, 0.9, 0.55)
                b.props_on(*spot, 0.9, 0.55, top, n(0, 3))
        for _ in range(n(0, 3)):
            length = rng.uniform(0.6, 1.6)
            if spot := _try(b, length, 0.4):
                b.bookshelf(*spot, length)
        if spot := _try(b, rng.uniform(1.0, 2.0), 0.5):
            b.cabinet(*spot, rng.uniform(1.0, 1.8))
        for _ in range(n(0, 3)):
            if spot := _try(b, 0.55, 0.55, wall=False):
                b.chair(*spot)
    elif kind == "office":
        for _ in range(n(1, 5)):
            _desk_with_chair(b, rng)
        for _ in range(n(0, 3)):
            length = rng.uniform(0.6, 1.6)
            if spot := _try(b, length, 0.4):
                b.bookshelf(*spot, length)
        for _ in range(n(0, 3)):
            length = rng.uniform(0.5, 1.5)
            if spot := _try(b, length, 0.55):
                b.cabinet(*spot, length)
        if rng.random() < 0.4:
            _table_with_chairs(b, rng, rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.0), n(1, 5))
        if rng.random() < 0.2 and (spot := _try(b, 0.8, 0.75)):
            b.refrigerator(*spot)
    elif kind == "kitchen":
        for k in range(n(1, 3)):
            length = rng.uniform(1.2, 3.0)
            if spot := _try(b, length, 0.62):
                top = b.counter(*spot, length, with_sink=k == 0)
                b.props_on(*spot, length, 0.6, top, n(0, 4))
        if rng.random() < 0.8 and (spot := _try(b, 0.85, 0.75)):
            b.refrigerator(*spot)
        for _ in range(n(0, 3)):  # wall cabinets above head height
            wall, along = int(n(4)), rng.uniform(0.6, min(b.size[:2]) - 0.6)
            b.on_wall(wall, along, rng.uniform(0.6, 1.2), 1.45, min(2.2, b.size[2] - 0.05), 0.35, CABINET,
                      b.new_instance(), b.color(CABINET))
        if rng.random() < 0.7:
            _table_with_chairs(b, rng, rng.uniform(0.8, 1.4), rng.uniform(0.6, 0.9), n(1, 5))
    elif kind == "bathroom":
        length, width = rng.uniform(1.4, 1.75), rng.uniform(0.7, 0.8)
        if rng.random() < 0.75 and (spot := _try(b, length, width)):
            b.bathtub(*spot, length, width)
            if rng.random() < 0.8:
                b.shower_curtain(*spot, length, width / 2 - 0.05)
        elif rng.random() < 0.6 and (spot := _try(b, 0.9, 0.9)):  # a shower stall: curtain only
            b.shower_curtain(*spot, 0.9, 0.4)
        if spot := _try(b, 0.5, 0.72):
            b.toilet(*spot)
        if rng.random() < 0.5:
            if spot := _try(b, 0.6, 0.5):
                b.pedestal_sink(*spot)
        elif spot := _try(b, rng.uniform(0.9, 1.5), 0.58):
            b.counter(*spot, 1.0, with_sink=True)
        if rng.random() < 0.5 and (spot := _try(b, 0.6, 0.4)):
            b.cabinet(*spot, 0.6)
    else:  # conference
        length = min(rng.uniform(2.0, 4.0), max(b.size[0], b.size[1]) - 2.2)
        _table_with_chairs(b, rng, max(length, 1.2), rng.uniform(1.0, 1.4), n(4, 11))
        for _ in range(n(0, 3)):
            if spot := _try(b, 0.55, 0.55, wall=False):
                b.chair(*spot)
        if spot := _try(b, rng.uniform(0.8, 1.6), 0.5):
            b.cabinet(*spot, rng.uniform(0.8, 1.5))
    # everywhere: otherfurniture and some ignored clutter on the floor
    for _ in range(n(0, 4)):
        if spot := _try(b, 0.6, 0.6, wall=rng.random() < 0.6):
            b.other_furniture(*spot)
    for _ in range(n(0, 5)):
        if spot := _try(b, 0.35, 0.35, wall=False):
            b.clutter(spot[0], spot[1], 0.0, scale=1.5)


def build_scan_room(seed: int, kind: str | None = None) -> tuple[Room, str]:
    """A random furnished room of ``kind`` (one of :data:`ROOM_KINDS`; None: drawn) from ``seed``.

    Returns ``(room, kind)``. The room's interior is [0, sx] x [0, sy] x [0, h] with the floor at
    z = 0; an L-shaped room has a wall block (label wall) filling one corner of that box.
    Solids 0-5 are the shell (floor, ceiling, four walls), as in :func:`pcseg.synth.room.build_room`.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5CA9]))
    if kind is None:
        kind = ROOM_KINDS[int(rng.choice(len(ROOM_KINDS), p=[0.2, 0.2, 0.2, 0.15, 0.15, 0.1]))]
    (x0, x1), (y0, y1) = _SIZES[kind]
    size = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1), rng.uniform(2.4, 3.2)])
    b = _ScanRoomBuilder(rng, size)
    b.shell()
    sx, sy, h = size
    if min(sx, sy) > 3.5 and rng.random() < 0.3:  # L shape: a wall block in one corner
        cx, cy = rng.uniform(0.25, 0.45) * sx, rng.uniform(0.25, 0.45) * sy
        corner = int(rng.integers(4))
        bx = cx / 2 if corner in (0, 2) else sx - cx / 2
        by = cy / 2 if corner in (0, 1) else sy - cy / 2
        b.box([bx, by, h / 2], [cx, cy, h], 0.0, WALL, 0, b.colors[2])
        b.footprints.append((bx - cx / 2, by - cy / 2, bx + cx / 2, by + cy / 2))
    if rng.random() < 0.25:  # a column (not a benchmark class) against a wall
        if spot := _try(b, 0.4, 0.4):
            b.box([spot[0], spot[1], h / 2], [0.4, 0.4, h], spot[2], COLUMN, 0, b.colors[2])
    _wall_openings(b, rng, kind)
    _furnish(b, rng, kind)
    return Room(size=size, scene=b.scene, colors=b.colors), kind


__all__ = ["build_scan_room", "ROOM_KINDS"]
