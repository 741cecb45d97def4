"""The street's vocabulary: SemanticKITTI raw ids of its classes, the road types, and
:class:`StreetLayout`, the cross-section :mod:`pcseg.synth.street` builds and
:mod:`pcseg.synth.road_types` reshapes (kept apart so neither imports the other's builder)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# SemanticKITTI raw ids
ROAD, SIDEWALK, PARKING, TERRAIN = 40, 48, 44, 72
BUILDING, FENCE, VEGETATION, TRUNK, POLE, TRAFFIC_SIGN = 50, 51, 70, 71, 80, 81
CAR, TRUCK, OTHER_VEHICLE = 10, 18, 20
PERSON, BICYCLIST, MOTORCYCLIST, BICYCLE, MOTORCYCLE = 30, 31, 32, 11, 15

LAYOUTS = ("urban", "rural", "highway")

CLASS_NAMES = {
    ROAD: "road", SIDEWALK: "sidewalk", PARKING: "parking", TERRAIN: "terrain", BUILDING: "building",
    FENCE: "fence", VEGETATION: "vegetation", TRUNK: "trunk", POLE: "pole", TRAFFIC_SIGN: "traffic-sign",
    CAR: "car", TRUCK: "truck", OTHER_VEHICLE: "other-vehicle", PERSON: "person", BICYCLIST: "bicyclist",
    MOTORCYCLIST: "motorcyclist", BICYCLE: "bicycle", MOTORCYCLE: "motorcycle",
}


@dataclass
class StreetLayout:
    """The street's cross-section in metres (see :mod:`pcseg.synth.street`) and its extent along x."""

    road_half_width: float
    parking_width: tuple[float, float]  # (right side y < 0, left side y > 0); 0 = no parking band
    verge_width: tuple[float, float]  # grass strip between the road (or parking) and the sidewalk, per side
    sidewalk_width: float
    curb_height: float
    cross_x: float | None  # x of a cross street's centre line, or None
    cross_half_width: float
    x_min: float
    x_max: float
    ego_lane_y: float = 0.0  # centre of the first lane right of the centre line, where the ego car drives
    kind: str = "urban"  # one of LAYOUTS
    sidewalks: tuple[bool, bool] = (True, True)  # (right, left): a raised sidewalk on that side
    median_half_width: float = 0.0  # highway: half width of the central barrier or grass strip
    grass_median: bool = False  # highway: the median is grass (terrain) instead of a barrier on asphalt
    grass_roughness: float = 0.12  # rays stop up to this many metres above the ground on grass
    paved_roughness: float = 0.0  # the same on asphalt and parking (worn, patched surfaces)
    terrain_rise: float = 0.0  # metres grass stands above the road plane (lawns and verges behind the curb)
    undulation: tuple = ()  # (amplitude m, wavelength m, direction rad, phase rad) of each wave of the ground's relief

    def elevation(self, x, y):
        """Metres the ground's relief raises the point (x, y): a sum of long plane waves."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        out = np.zeros(np.broadcast(x, y).shape)
        for amplitude, wavelength, direction, phase in self.undulation:
            along = x * np.cos(direction) + y * np.sin(direction)
            out += amplitude * np.sin(2 * np.pi * along / wavelength + phase)
        return out

    def has_sidewalk(self, side: int) -> bool:
        return self.sidewalks[0 if side < 0 else 1]

    def outer_edge(self, side: int) -> float:
        """|y| where the street's frontage (terrain, buildings) starts on ``side``."""
        return self.sidewalk_inner(side) + (self.sidewalk_width if self.has_sidewalk(side) else 0.0)

    def sidewalk_inner(self, side: int) -> float:
        """|y| where the sidewalk starts on ``side`` (-1 right, +1 left)."""
        k = 0 if side < 0 else 1
        return self.road_half_width + self.parking_width[k] + self.verge_width[k]

    def in_cross_street(self, x, margin: float = 0.0):
        if self.cross_x is None:
            return np.zeros_like(np.asarray(x, dtype=np.float64), dtype=bool)
        return np.abs(np.asarray(x) - self.cross_x) < self.cross_half_width + margin
