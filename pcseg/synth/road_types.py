"""Road types beyond the urban street: rural roads and highways (:data:`pcseg.synth.street.LAYOUTS`).

Real LiDAR recordings are not all city streets with curbs: SemanticKITTI's sequences include
country roads where grass (terrain) meets the asphalt directly and motorways with guard rails and
median barriers. A model trained only on curbed streets learns "the band beside the road is
sidewalk" and labels a grass verge as sidewalk. These variants keep the urban street's objects and
sensor and change the cross-section:

- ``rural``: a narrow two-lane road, no parking, a sidewalk on a side only sometimes, grass from
  the road edge outwards, guard rails on some sides, few buildings.
- ``highway``: two or three lanes each way around a median that is either a concrete barrier on
  the asphalt or a grass strip with guard rails, no sidewalks, no cross street, noise walls.

Guard rails, barriers and noise walls carry SemanticKITTI's ``fence`` label (its definition
includes crash barriers and small walls).
"""

from __future__ import annotations

import numpy as np

from pcseg.synth.street_layout import FENCE, LAYOUTS, StreetLayout

# metres a ray may stop above the ground on grass, drawn per scene: mown lawn to tall grass
ROUGHNESS_RANGE = (0.03, 0.25)


def draw_kind(layouts, rng: np.random.Generator) -> str:
    """One of ``layouts`` (names from :data:`LAYOUTS`), uniformly."""
    return str(layouts[int(rng.integers(len(layouts)))])


def check_layouts(layouts) -> tuple[str, ...]:
    from pcseg.errors import PcsegValueError

    names = tuple(layouts)
    bad = [name for name in names if name not in LAYOUTS]
    if not names or bad:
        raise PcsegValueError(f"layouts must be a non-empty list of {list(LAYOUTS)}, got {list(names)}")
    return names


def adapt_layout(layout: StreetLayout, kind: str, rng: np.random.Generator) -> None:
    """Turn a drawn urban cross-section into ``kind`` in place (draws from ``rng`` only)."""
    layout.kind = kind
    layout.grass_roughness = float(rng.uniform(*ROUGHNESS_RANGE))
    if kind == "rural":
        layout.road_half_width = float(rng.uniform(2.8, 4.2))
        layout.parking_width = (0.0, 0.0)
        layout.verge_width = tuple(float(rng.uniform(0.5, 4.0)) for _ in range(2))
        layout.sidewalks = tuple(bool(rng.random() < 0.25) for _ in range(2))
    elif kind == "highway":
        layout.grass_median = bool(rng.random() < 0.5)
        layout.median_half_width = float(rng.uniform(1.5, 4.0)) if layout.grass_median else float(rng.uniform(0.3, 0.6))
        lanes = int(rng.integers(2, 4))
        layout.road_half_width = layout.median_half_width + lanes * float(rng.uniform(3.4, 3.8)) + float(rng.uniform(0.5, 2.5))
        layout.parking_width = (0.0, 0.0)
        layout.verge_width = (0.0, 0.0)
        layout.sidewalks = (False, False)
        layout.cross_x = None


# option -> number of values
GROUND_KEYS = {"curb_height": 3, "paved_roughness": 2, "grass_roughness": 2, "terrain_rise": 2, "undulation": 2}


def check_ground(ground) -> dict:
    """``ground`` options (see :func:`draw_ground`) checked: one clear error naming the bad key."""
    from pcseg.errors import PcsegValueError

    if not isinstance(ground, dict) or set(ground) - set(GROUND_KEYS):
        raise PcsegValueError(f"ground options must be a mapping with keys from {sorted(GROUND_KEYS)}, got {ground!r}")
    out = {}
    for key, values in ground.items():
        vals = list(values) if isinstance(values, (list, tuple)) else None
        if vals is None or len(vals) != GROUND_KEYS[key] or not all(isinstance(v, (int, float)) for v in vals) \
                or sorted(vals) != vals or vals[0] < 0 or vals[-1] > 1.0:
            raise PcsegValueError(f"ground option {key} must be {GROUND_KEYS[key]} increasing numbers in metres "
                                  f"within [0, 1], got {values!r}")
        out[key] = [float(v) for v in vals]
    return out


def draw_ground(layout: StreetLayout, ground: dict, rng: np.random.Generator) -> None:
    """Redraw the ground's details of ``layout`` from the ranges in ``ground`` (in place).

    ``curb_height: [low, mode, high]`` (triangular): real curbs in LiDAR scans stand lower than
    the 10-18 cm of the default street (SemanticKITTI's sidewalks sit a median 7-8 cm above the
    road beside them); ``paved_roughness: [low, high]`` (uniform): returns from asphalt spread a
    centimetre or two (worn and patched surfaces, the road's crown), which the default ground's
    perfect plane lacks.

    Grass, which the default street models as a plane at road level whose returns spread up to
    0.03-0.25 m: real lawns and verges in SemanticKITTI are smoother (10-15 mm local spread) and
    lie a median 0.14-0.25 m above the road beside them, so ``grass_roughness: [low, high]``
    (uniform) redraws the spread and ``terrain_rise: [low, high]`` (uniform) lifts grass returns.
    ``undulation: [low, high]`` (uniform): the amplitude in metres of the ground's relief, three
    plane waves of 20-80 m wavelength in random directions (grade, crown, gentle hills) where the
    default ground is flat; real roads rise and fall 0.1-0.2 m across one scan.
    Keys that are absent draw nothing, so the scenes of existing configs stay as they were.
    """
    ground = check_ground(ground)
    if "curb_height" in ground:
        low, mode, high = ground["curb_height"]
        layout.curb_height = float(rng.triangular(low, mode, high)) if high > low else low
    if "paved_roughness" in ground:
        layout.paved_roughness = float(rng.uniform(*ground["paved_roughness"]))
    if "grass_roughness" in ground:
        layout.grass_roughness = float(rng.uniform(*ground["grass_roughness"]))
    if "terrain_rise" in ground:
        layout.terrain_rise = float(rng.uniform(*ground["terrain_rise"]))
    if "undulation" in ground:
        total = float(rng.uniform(*ground["undulation"]))
        shares = rng.dirichlet(np.ones(3))
        layout.undulation = tuple((total * float(share), float(rng.uniform(20.0, 80.0)), float(rng.uniform(0, np.pi)),
                                   float(rng.uniform(0, 2 * np.pi))) for share in shares)


def lanes_of(layout: StreetLayout) -> tuple[int, float]:
    """(lanes per direction, lane width) between the median and the road edge."""
    span = layout.road_half_width - layout.median_half_width
    if layout.kind == "highway":
        span -= 1.0  # the hard shoulder
    lanes = max(1, int(span // 3.2))
    return lanes, span / lanes


def building_probability(layout: StreetLayout) -> float:
    """How often a frontage segment has a building (urban streets: half of them)."""
    return {"urban": 0.5, "rural": 0.15, "highway": 0.05}[layout.kind]


def guard_rail(scene, rng: np.random.Generator, x0: float, x1: float, y: float) -> None:
    """A steel guard rail along x at ``y``: a rail beam 0.5-0.8 m up on posts every 2-4 m."""
    top = float(rng.uniform(0.6, 0.8))
    refl = float(rng.uniform(0.3, 0.6))  # galvanised steel returns strongly
    edges = np.arange(x0, x1 + 8.0, 8.0)  # short segments keep each solid's angular window small
    for e0, e1 in zip(edges[:-1], edges[1:]):
        scene.add_box([(e0 + e1) / 2, y, top - 0.17], [e1 - e0, 0.08, 0.34], 0.0, FENCE, 0, refl)
    step = float(rng.uniform(2.0, 4.0))
    for x in np.arange(x0, x1, step):
        scene.add_box([x, y + np.sign(y) * 0.1, top / 2], [0.12, 0.1, top], 0.0, FENCE, 0, refl)


def concrete_barrier(scene, rng: np.random.Generator, x0: float, x1: float, y: float) -> None:
    """A New-Jersey-style concrete barrier, 0.8-1.1 m tall, along x at ``y``."""
    height, refl = float(rng.uniform(0.8, 1.1)), float(rng.uniform(0.3, 0.5))
    edges = np.arange(x0, x1 + 8.0, 8.0)
    for e0, e1 in zip(edges[:-1], edges[1:]):
        scene.add_box([(e0 + e1) / 2, y, height / 2], [e1 - e0, 0.5, height], 0.0, FENCE, 0, refl)


def noise_wall(scene, rng: np.random.Generator, x0: float, x1: float, y: float) -> None:
    """A 2.5-4.5 m noise wall along x at ``y``, in panels."""
    height, refl = float(rng.uniform(2.5, 4.5)), float(rng.uniform(0.2, 0.45))
    edges = np.arange(x0, x1 + 6.0, 6.0)
    for e0, e1 in zip(edges[:-1], edges[1:]):
        scene.add_box([(e0 + e1) / 2, y, height / 2], [e1 - e0, 0.2, height], 0.0, FENCE, 0, refl)


def add_road_furniture(scene, layout: StreetLayout, rng: np.random.Generator) -> None:
    """Guard rails, median barriers and noise walls of rural roads and highways."""
    x0, x1 = layout.x_min, layout.x_max
    if layout.kind == "highway":
        if layout.grass_median:
            for side in (-1, 1):
                guard_rail(scene, rng, x0, x1, side * (layout.median_half_width - 0.3))
        else:
            concrete_barrier(scene, rng, x0, x1, 0.0)
        for side in (-1, 1):
            if rng.random() < 0.7:
                guard_rail(scene, rng, x0, x1, side * (layout.road_half_width + float(rng.uniform(0.3, 1.0))))
            if rng.random() < 0.3:
                noise_wall(scene, rng, x0, x1, side * (layout.road_half_width + float(rng.uniform(4.0, 12.0))))
    elif layout.kind == "rural":
        for side in (-1, 1):
            if not layout.has_sidewalk(side) and rng.random() < 0.35:
                a = float(rng.uniform(x0, (x0 + x1) / 2))
                b = float(rng.uniform(a + 20.0, x1 + 20.0))
                guard_rail(scene, rng, a, min(b, x1), side * (layout.road_half_width + float(rng.uniform(0.3, 1.2))))
