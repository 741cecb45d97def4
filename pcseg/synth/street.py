"""Procedural street scenes with SemanticKITTI's classes (raw ids), built from simple solids.

The world frame has z up, the ground at z = 0 and the main road along +x centred on y = 0.
Cross-section of one side of the street, from the centre outwards: road lanes, an optional
parking band (ground level), a raised sidewalk slab (curb 0.10-0.18 m), then terrain (grass)
with trees, bushes, fences, and buildings set back from the sidewalk. Some seeds add a cross
street. Everything (widths, counts, sizes, orientations, gaps) is drawn from the seed.

``layouts`` adds the other road types LiDAR datasets are full of (:data:`LAYOUTS`): ``rural``
roads where grass meets the asphalt without a curb (a sidewalk on a side only sometimes, guard
rails, few buildings) and ``highway`` carriageways (two or three lanes each way, a barrier or a
grass median with guard rails, no sidewalks, noise walls). With ``layouts`` the grass roughness
is drawn per scene as well. Without it every scene is the ``urban`` street above, unchanged.
"""

from __future__ import annotations

import numpy as np

from pcseg.synth import road_types
from pcseg.synth.raycast import Scene
from pcseg.synth.street_layout import (  # noqa: F401  (class ids and names re-exported: the street's API in one place)
    BICYCLE, BICYCLIST, BUILDING, CAR, CLASS_NAMES, FENCE, LAYOUTS, MOTORCYCLE, MOTORCYCLIST, OTHER_VEHICLE, PARKING,
    PERSON, POLE, ROAD, SIDEWALK, TERRAIN, TRAFFIC_SIGN, TRUCK, TRUNK, VEGETATION, StreetLayout,
)


def _ground_functions(layout: StreetLayout):
    """(label(x, y), reflectivity(x, y)) of the ground plane, vectorised over arrays."""

    def label(x, y):
        x, y = np.asarray(x), np.asarray(y)
        out = np.full(x.shape, TERRAIN, dtype=np.int64)
        ay = np.abs(y)
        park_w = np.where(y < 0, layout.parking_width[0], layout.parking_width[1])
        out[(ay < layout.road_half_width + park_w)] = PARKING
        out[ay < layout.road_half_width] = ROAD
        cross = layout.in_cross_street(x)
        out[cross & (ay >= layout.road_half_width)] = ROAD
        if layout.grass_median:
            out[ay < layout.median_half_width] = TERRAIN
        return out

    def reflectivity(x, y):
        x, y = np.asarray(x), np.asarray(y)
        kind = label(x, y)
        # asphalt is darker than grass (KITTI medians: road 0.20, terrain 0.34)
        refl = np.select([kind == ROAD, kind == PARKING], [0.27, 0.33], 0.46)
        # dashed centre line and solid edge lines: retro-reflective paint
        centre = (np.abs(y) < 0.08) & ((x % 6.0) < 3.0)
        edge = np.abs(np.abs(y) - (layout.road_half_width - 0.25)) < 0.08
        refl[(centre | edge) & ~layout.in_cross_street(x)] = 0.75
        return refl

    def roughness(x, y):
        # grass: rays stop up to this many metres above the ground plane; paved ground is smooth
        return np.where(label(x, y) == TERRAIN, layout.grass_roughness, layout.paved_roughness)

    return label, reflectivity, roughness


class _Builder:
    """Places objects into a :class:`Scene`, handing out instance ids for things."""

    def __init__(self, rng: np.random.Generator, scene: Scene, layout: StreetLayout):
        self.rng, self.scene, self.layout = rng, scene, layout
        self.next_instance = 1

    def instance(self) -> int:
        self.next_instance += 1
        return self.next_instance - 1

    # ---- vehicles ---------------------------------------------------------------------------
    def car(self, x, y, yaw):
        r = self.rng
        length, width, height = r.uniform(3.7, 4.9), r.uniform(1.65, 1.95), r.uniform(1.38, 1.65)
        inst, refl = self.instance(), r.uniform(0.0, 0.2)  # car paint returns little (KITTI median 0)
        c, s = np.cos(yaw), np.sin(yaw)
        body_top = height * r.uniform(0.55, 0.62)
        self.scene.add_box([x, y, (0.18 + body_top) / 2], [length, width, body_top - 0.18], yaw, CAR, inst, refl)
        cab_len = length * r.uniform(0.45, 0.6)
        shift = -length * r.uniform(0.0, 0.12)
        self.scene.add_box([x + c * shift, y + s * shift, (body_top + height) / 2],
                           [cab_len, width * 0.9, height - body_top], yaw, CAR, inst, refl)
        for fx in (-0.33, 0.33):  # wheels: the dark gap under the body shows them
            for fy in (-0.45, 0.45):
                wx, wy = fx * length, fy * width
                self.scene.add_box([x + c * wx - s * wy, y + s * wx + c * wy, 0.16], [0.62, 0.22, 0.32], yaw, CAR, inst, 0.05)

    def truck(self, x, y, yaw):
        r = self.rng
        inst, refl = self.instance(), r.uniform(0.1, 0.5)
        width = r.uniform(2.3, 2.55)
        cab_len, box_len = r.uniform(1.9, 2.4), r.uniform(4.5, 8.0)
        cab_h, box_h = r.uniform(2.6, 3.0), r.uniform(3.2, 3.9)
        c, s = np.cos(yaw), np.sin(yaw)
        total = cab_len + 0.3 + box_len
        cab_c = total / 2 - cab_len / 2
        box_c = -total / 2 + box_len / 2
        self.scene.add_box([x + c * cab_c, y + s * cab_c, (0.45 + cab_h) / 2], [cab_len, width, cab_h - 0.45], yaw, TRUCK, inst, refl)
        self.scene.add_box([x + c * box_c, y + s * box_c, (0.9 + box_h) / 2], [box_len, width, box_h - 0.9], yaw, TRUCK, inst, refl)
        for fx in (cab_c, box_c - box_len * 0.3, box_c + box_len * 0.3):
            self.scene.add_box([x + c * fx, y + s * fx, 0.5], [1.0, width - 0.1, 0.9], yaw, TRUCK, inst, 0.05)
        return total

    def other_vehicle(self, x, y, yaw):
        """Bus, tram or trailer: one long box with a high floor and a flat roof."""
        r = self.rng
        inst = self.instance()
        length, width, height = r.uniform(9.0, 14.0), r.uniform(2.4, 2.6), r.uniform(2.9, 3.4)
        self.scene.add_box([x, y, (0.35 + height) / 2], [length, width, height - 0.35], yaw, OTHER_VEHICLE, inst, r.uniform(0.2, 0.5))
        return length

    def rider(self, x, y, yaw, label, vehicle_label, motor: bool, ridden: bool):
        """A bicycle/motorcycle, with a rider when ``ridden`` (then all of it gets ``label``)."""
        r = self.rng
        inst = self.instance()
        lab = label if ridden else vehicle_label
        c, s = np.cos(yaw), np.sin(yaw)
        length = r.uniform(1.9, 2.2) if motor else r.uniform(1.6, 1.8)
        wheel_r = 0.32 if motor else 0.34
        for fx in (-0.5, 0.5):
            wx = fx * (length - 2 * wheel_r)
            self.scene.add_ellipsoid([x + c * wx, y + s * wx, wheel_r], [wheel_r, 0.05 if not motor else 0.09, wheel_r],
                                     yaw, lab, inst, 0.15)
        if motor:
            self.scene.add_box([x, y, 0.7], [length * 0.55, 0.45, 0.55], yaw, lab, inst, r.uniform(0.1, 0.5))
        else:
            self.scene.add_box([x, y, 0.62], [length * 0.5, 0.06, 0.5], yaw, lab, inst, 0.4)
        if ridden:
            h = r.uniform(0.95, 1.1)
            self.scene.add_ellipsoid([x, y, 0.75 + h * 0.25], [0.25, 0.2, 0.3], yaw, lab, inst, 0.3)
            self.scene.add_ellipsoid([x - c * 0.1, y - s * 0.1, 0.75 + h * 0.7], [0.2, 0.22, 0.3], yaw, lab, inst, 0.35)
            self.scene.add_ellipsoid([x, y, 0.75 + h * 1.05], [0.12, 0.12, 0.13], yaw, lab, inst, 0.3)

    def person(self, x, y, yaw):
        r = self.rng
        inst, h = self.instance(), r.uniform(1.5, 1.95)
        refl = r.uniform(0.15, 0.5)
        self.scene.add_ellipsoid([x, y, 0.25 * h], [0.14, 0.2, 0.25 * h], yaw, PERSON, inst, refl)
        self.scene.add_ellipsoid([x, y, 0.63 * h], [0.14, 0.23, 0.17 * h], yaw, PERSON, inst, refl)
        self.scene.add_ellipsoid([x, y, 0.93 * h], [0.1, 0.09, 0.07 * h], yaw, PERSON, inst, refl)

    # ---- street furniture and vegetation -----------------------------------------------------
    def pole(self, x, y, side, with_sign: bool):
        r = self.rng
        height = r.uniform(3.0, 4.0) if with_sign else r.uniform(5.0, 9.0)
        radius = r.uniform(0.05, 0.08) if with_sign else r.uniform(0.08, 0.16)
        self.scene.add_cylinder(x, y, 0.0, height, radius, POLE, 0, r.uniform(0.15, 0.35))
        if with_sign and r.random() < 0.25:  # a direction board on two posts
            width, tall = r.uniform(1.5, 2.5), r.uniform(0.8, 1.4)
            self.scene.add_cylinder(x + width * 0.4, y, 0.0, height, radius, POLE, 0, r.uniform(0.15, 0.35))
            self.scene.add_box([x + width * 0.2, y, height - tall / 2], [width, 0.05, tall], r.normal(0, 0.05),
                               TRAFFIC_SIGN, 0, r.uniform(0.35, 0.7))
        elif with_sign:
            size = r.uniform(0.6, 1.2)
            n_signs = 1 + int(r.random() < 0.3)
            for k in range(n_signs):
                zc = height - size / 2 - k * (size + 0.1)
                # plate faces traffic coming along x
                self.scene.add_box([x, y, zc], [0.04, size, size * r.uniform(0.7, 1.0)], r.normal(0, 0.1),
                                   TRAFFIC_SIGN, 0, r.uniform(0.35, 0.7))
        elif r.random() < 0.6:  # street lamp arm over the road
            arm = r.uniform(1.0, 2.0)
            self.scene.add_box([x, y - side * arm / 2, height - 0.1], [0.12, arm, 0.12], 0.0, POLE, 0, 0.4)

    def tree(self, x, y):
        r = self.rng
        trunk_h, trunk_r = r.uniform(1.8, 3.5), r.uniform(0.1, 0.3)
        self.scene.add_cylinder(x, y, 0.0, trunk_h + 0.5, trunk_r, TRUNK, 0, r.uniform(0.3, 0.45))
        crown = r.uniform(1.5, 3.5)
        for _ in range(r.integers(1, 4)):
            off = r.normal(0, crown * 0.3, 3)
            radii = crown * r.uniform(0.7, 1.1, 3)
            self.scene.add_ellipsoid([x + off[0], y + off[1], trunk_h + radii[2] * 0.9 + abs(off[2])], radii, r.uniform(0, np.pi),
                                     VEGETATION, 0, r.uniform(0.3, 0.5), porosity=r.uniform(0.1, 0.35))

    def bushes(self, x0, x1, y, depth):
        """A hedge or a row of bushes between x0 and x1 at |y| band starting at ``y``."""
        r = self.rng
        x = x0
        while x < x1:
            rx, ry, rz = r.uniform(0.5, 1.5), min(depth / 2, r.uniform(0.4, 1.2)), r.uniform(0.4, 1.3)
            self.scene.add_ellipsoid([x + rx, y, rz * 0.7], [rx, ry, rz], r.uniform(-0.3, 0.3), VEGETATION, 0,
                                     r.uniform(0.3, 0.5), porosity=r.uniform(0.0, 0.2))
            x += rx * r.uniform(1.2, 2.5)

    def fence(self, x0, x1, y):
        r = self.rng
        height = r.uniform(0.9, 2.0)
        self.scene.add_box([(x0 + x1) / 2, y, height / 2 + 0.05], [x1 - x0, r.uniform(0.04, 0.12), height], 0.0, FENCE, 0,
                           r.uniform(0.2, 0.5), porosity=r.choice([0.0, 0.3, 0.5]))

    def building(self, x0, x1, y_front, side):
        r = self.rng
        depth, height = r.uniform(8.0, 20.0), r.uniform(4.0, 22.0)
        yc = y_front + side * depth / 2
        refl = r.uniform(0.15, 0.45)
        self.scene.add_box([(x0 + x1) / 2, yc, height / 2], [x1 - x0, depth, height], 0.0, BUILDING, 0, refl)
        if r.random() < 0.4:  # a lower annex or a setback upper storey
            ax0 = r.uniform(x0, (x0 + x1) / 2)
            self.scene.add_box([(ax0 + x1) / 2, y_front + side * 0.6, 1.5], [x1 - ax0, 1.2, 3.0], 0.0, BUILDING, 0, refl)


def build_street(seed: int, x_min: float = -90.0, x_max: float = 90.0, keep_clear: tuple[float, float] | None = None,
                 layouts=None, ground=None):
    """A random street scene covering x in [x_min, x_max] metres.

    ``keep_clear=(x0, x1)`` keeps the ego lane (``layout.ego_lane_y``) free of vehicles and people
    between x0 and x1 (the ego vehicle drives there). ``layouts``: None for the urban street
    (the scenes of earlier releases, unchanged), or names from :data:`LAYOUTS` to draw the road
    type from per seed (:mod:`pcseg.synth.road_types`). ``ground``: None, or a dict overriding
    the ranges of the ground's details, each drawn per seed (:func:`road_types.draw_ground`):
    ``curb_height: [low, mode, high]`` metres, ``paved_roughness``, ``grass_roughness``,
    ``terrain_rise``, ``undulation``: ``[low, high]`` metres.
    Returns ``(scene, layout)``: a :class:`Scene` ready to cast and its :class:`StreetLayout`.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x57EE7]))
    road_half = float(rng.uniform(2.8, 5.5))
    layout = StreetLayout(
        road_half_width=road_half,
        parking_width=tuple(float(rng.choice([0.0, rng.uniform(2.2, 2.8)])) for _ in range(2)),
        verge_width=tuple(float(rng.choice([0.0, rng.uniform(1.0, 5.0)], p=[0.35, 0.65])) for _ in range(2)),
        sidewalk_width=float(rng.uniform(1.8, 4.5)),
        curb_height=float(rng.uniform(0.10, 0.18)),
        cross_x=float(rng.uniform(x_min * 0.5, x_max * 0.5)) if rng.random() < 0.4 else None,
        cross_half_width=float(rng.uniform(3.5, 6.0)),
        x_min=float(x_min), x_max=float(x_max),
    )
    variant_rng = None
    if layouts is not None:
        # a stream of its own, so the urban street's draws stay those of the seed
        variant_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x40AD]))
        road_types.adapt_layout(layout, road_types.draw_kind(road_types.check_layouts(layouts), variant_rng), variant_rng)
        road_half = layout.road_half_width
    if ground is not None:
        road_types.draw_ground(layout, ground, np.random.default_rng(np.random.SeedSequence([int(seed), 0x6D0])))
    label_fn, refl_fn, rough_fn = _ground_functions(layout)
    scene = Scene(ground_label=label_fn, ground_reflectivity=refl_fn, ground_roughness=rough_fn)
    if layout.terrain_rise:
        scene.ground_lift = lambda x, y: np.where(label_fn(x, y) == TERRAIN, layout.terrain_rise, 0.0)
    if layout.undulation:
        scene.elevation = layout.elevation
    b = _Builder(rng, scene, layout)
    lanes, lane_w = road_types.lanes_of(layout)  # per direction
    median = layout.median_half_width
    layout.ego_lane_y = -(median + lane_w / 2)

    def blocked(x, margin=0.0):
        return bool(layout.in_cross_street(x, margin))

    def ego_lane(x, y, half_len):
        if keep_clear is None:
            return False
        x0, x1 = keep_clear
        return abs(y - layout.ego_lane_y) < lane_w * 0.75 and x + half_len > x0 - 8 and x - half_len < x1 + 8

    # sidewalks (raised slabs), split around the cross street
    for side in (-1, 1):
        if not layout.has_sidewalk(side):
            continue
        inner = layout.sidewalk_inner(side)
        yc = side * (inner + layout.sidewalk_width / 2)
        pieces = [(x_min, x_max)]
        if layout.cross_x is not None:
            cx, cw = layout.cross_x, layout.cross_half_width
            pieces = [(x_min, cx - cw), (cx + cw, x_max)]
        for a, c in pieces:
            # short slabs keep each solid's angular window (and so the casting cost) small
            edges = np.linspace(a, c, max(2, int(np.ceil((c - a) / 8.0)) + 1))
            for e0, e1 in zip(edges[:-1], edges[1:]):
                scene.add_box([(e0 + e1) / 2, yc, layout.curb_height / 2], [e1 - e0, layout.sidewalk_width, layout.curb_height],
                              0.0, SIDEWALK, 0, 0.42)
    if layout.cross_x is not None and layout.kind == "urban":  # sidewalks along the cross street
        cx, cw = layout.cross_x, layout.cross_half_width
        for side in (-1, 1):
            edges = np.linspace(layout.sidewalk_inner(side), 80.0, 10)
            for sx in (-1, 1):
                for y0, y1 in zip(edges[:-1], edges[1:]):
                    scene.add_box([cx + sx * (cw + layout.sidewalk_width / 2), side * (y0 + y1) / 2, layout.curb_height / 2],
                                  [layout.sidewalk_width, y1 - y0, layout.curb_height], 0.0, SIDEWALK, 0, 0.42)

    # traffic on the road: lanes y < 0 drive +x, lanes y > 0 drive -x
    for direction in (-1, 1):
        for lane in range(lanes):
            y = direction * (median + (lane + 0.5) * lane_w)
            x = x_min + rng.uniform(0, 30)
            while x < x_max:
                kind = rng.choice(4, p=[0.78, 0.06, 0.08, 0.08])
                yaw = (0.0 if direction < 0 else np.pi) + rng.normal(0, 0.03)
                length = {0: 4.5, 1: 10.0, 2: 13.0, 3: 2.0}[int(kind)]
                if not blocked(x, length / 2 + 1) and not ego_lane(x, y, length / 2):
                    jitter = rng.normal(0, 0.25)
                    if kind == 0:
                        b.car(x, y + jitter, yaw)
                    elif kind == 1:
                        b.truck(x, y + jitter, yaw)
                    elif kind == 2:
                        b.other_vehicle(x, y + jitter, yaw)
                    elif rng.random() < 0.5:  # two-wheelers keep near the lane's outer edge
                        b.rider(x, y + direction * lane_w * 0.3, yaw, BICYCLIST, BICYCLE, motor=False, ridden=True)
                    else:
                        b.rider(x, y + direction * lane_w * 0.3, yaw, MOTORCYCLIST, MOTORCYCLE, motor=True, ridden=True)
                x += length + rng.exponential(45.0) + 6.0

    # each side: parking band, sidewalk furniture, terrain, buildings
    building_p = road_types.building_probability(layout)  # share of frontage segments with a building
    for side in (-1, 1):
        park_w = layout.parking_width[0 if side < 0 else 1]
        inner = layout.sidewalk_inner(side)
        outer = layout.outer_edge(side)
        walkway = layout.has_sidewalk(side)
        if park_w > 0:
            y = side * (layout.road_half_width + park_w / 2)
            x = x_min + rng.uniform(0, 5)
            while x < x_max:
                if not blocked(x, 4):
                    if rng.random() < 0.55:
                        b.car(x, y, rng.choice([0.0, np.pi]) + rng.normal(0, 0.05))
                    elif rng.random() < 0.15:
                        b.truck(x, y, rng.normal(0, 0.03))
                    elif rng.random() < 0.05:  # a parked bus, trailer or camper
                        x += b.other_vehicle(x + 4.0, y, rng.normal(0, 0.03))
                x += rng.uniform(5.2, 6.5) + (rng.exponential(8.0) if rng.random() < 0.3 else 0.0)
        # poles and signs at the curb, trees in pits at the curb or on the terrain strip
        x = x_min + rng.uniform(0, 10)
        while x < x_max:
            if not blocked(x, 1.5):
                u = rng.random()
                if u < 0.3:
                    b.pole(x, side * (inner + 0.4), side, with_sign=False)
                elif u < 0.6:
                    b.pole(x, side * (inner + 0.35), side, with_sign=True)
                elif u < 0.8:
                    verge = layout.verge_width[0 if side < 0 else 1]
                    y_tree = inner - verge / 2 if verge > 1.0 else inner + (layout.sidewalk_width * 0.5 if walkway else 1.0)
                    b.tree(x, side * y_tree)
            x += rng.uniform(6, 25)
        # people, parked bicycles and motorcycles on the sidewalk
        x = x_min + rng.uniform(0, 5)
        while x < x_max:
            if not blocked(x, 1) and walkway:
                u = rng.random()
                ys = side * rng.uniform(inner + 0.6, outer - 0.3)
                if u < 0.55:
                    for _ in range(rng.integers(1, 4)):
                        b.person(x + rng.normal(0, 0.8), ys + rng.normal(0, 0.3), rng.uniform(0, 2 * np.pi))
                elif u < 0.8:
                    for k in range(rng.integers(1, 6)):  # a bike rack
                        b.rider(x + k * 0.7, side * (outer - 0.5), np.pi / 2 + rng.normal(0, 0.1), BICYCLIST, BICYCLE,
                                motor=False, ridden=False)
                else:
                    for k in range(rng.integers(1, 3)):
                        b.rider(x + k * 1.1, side * (inner + 0.8), np.pi / 2 + rng.normal(0, 0.15), MOTORCYCLIST, MOTORCYCLE,
                                motor=True, ridden=False)
            x += rng.exponential(18.0) + 3.0
        # beyond the sidewalk: terrain with vegetation and fences, buildings set back
        x = x_min
        while x < x_max:
            seg = rng.uniform(10.0, 40.0)
            x0, x1 = x, min(x + seg, x_max)
            x = x1 + rng.uniform(0.0, 6.0)
            if layout.cross_x is not None and x0 < layout.cross_x + layout.cross_half_width + layout.sidewalk_width + 1 \
                    and x1 > layout.cross_x - layout.cross_half_width - layout.sidewalk_width - 1:
                continue
            setback = float(rng.choice([0.0, rng.uniform(2.0, 8.0), rng.uniform(8.0, 18.0)], p=[0.15, 0.35, 0.5]))
            u = rng.random()
            if u < building_p:
                b.building(x0, x1, side * (outer + setback), side)
            if setback > 1.5:
                if rng.random() < 0.45:
                    b.fence(x0, x1, side * (outer + setback * rng.uniform(0.2, 0.9)))
                if rng.random() < 0.8:
                    b.bushes(x0, x1, side * (outer + rng.uniform(0.5, setback - 0.5)), setback)
                for _ in range(rng.poisson(seg / 7.0)):
                    b.tree(rng.uniform(x0, x1), side * (outer + rng.uniform(1.0, setback)))
            if u >= building_p:  # no building: open terrain with trees and bushes further out
                for _ in range(rng.poisson(seg / 6.0)):
                    b.tree(rng.uniform(x0, x1), side * (outer + setback + rng.uniform(1.0, 25.0)))
                if rng.random() < 0.7:
                    b.bushes(x0, x1, side * (outer + setback + rng.uniform(1.0, 6.0)), 3.0)
    # background beyond the street's own frontage: large buildings and groves 25-80 m out, which
    # the upper beams see over the near objects (open views give KITTI-like far returns)
    for side in (-1, 1):
        x = x_min + rng.uniform(0, 20)
        while x < x_max:
            lateral = rng.uniform(25.0, 80.0)
            width = rng.uniform(15.0, 50.0)
            if rng.random() < 0.3:
                depth, height = rng.uniform(10.0, 30.0), rng.uniform(6.0, 30.0)
                scene.add_box([x + width / 2, side * (lateral + depth / 2), height / 2], [width, depth, height], rng.normal(0, 0.1),
                              BUILDING, 0, rng.uniform(0.15, 0.45))
            else:
                for _ in range(rng.integers(4, 14)):
                    b.tree(x + rng.uniform(0, width), side * (lateral + rng.uniform(0, 15.0)))
                b.bushes(x, x + width, side * (lateral - 2.0), 4.0)
            x += width + rng.uniform(5.0, 40.0)
    # cyclists and motorcyclists at the kerb side of the outer lanes
    for direction in (-1, 1):
        for _ in range(rng.poisson(4.0)):
            x = rng.uniform(x_min, x_max)
            y = direction * (road_half - rng.uniform(0.6, 1.0))
            if blocked(x, 2) or ego_lane(x, y, 1.5) or layout.kind == "highway":
                continue
            yaw = (0.0 if direction < 0 else np.pi) + rng.normal(0, 0.05)
            if rng.random() < 0.6:
                b.rider(x, y, yaw, BICYCLIST, BICYCLE, motor=False, ridden=True)
            else:
                b.rider(x, y, yaw, MOTORCYCLIST, MOTORCYCLE, motor=True, ridden=True)
    if variant_rng is not None:
        road_types.add_road_furniture(scene, layout, variant_rng)
    # a few pedestrians crossing or walking at the road's edge
    for _ in range(rng.poisson(1.0)):
        x, y = rng.uniform(x_min, x_max), rng.uniform(-road_half, road_half)
        if not ego_lane(x, y, 1.0) and layout.kind != "highway":
            b.person(x, y, rng.uniform(0, 2 * np.pi))
    return scene, layout
