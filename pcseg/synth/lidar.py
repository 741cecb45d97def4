"""Rotating multi-beam LiDAR model: presets, ray pattern, noise, intensity, and :func:`lidar_scan`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.io.pointcloud import PointCloud
from pcseg.synth.raycast import Scene, cast
from pcseg.synth.street import build_street


@dataclass(frozen=True)
class SensorModel:
    """A spinning LiDAR.

    ``elevations_deg`` (beams,) beam elevation angles in degrees, ``columns`` azimuth steps per
    revolution, ``max_range`` metres, ``range_noise`` std-dev in metres, ``dropout`` probability a
    return is lost at random.
    """

    name: str
    elevations_deg: tuple
    columns: int
    max_range: float
    range_noise: float
    dropout: float

    @property
    def azimuth_step_deg(self) -> float:
        return 360.0 / self.columns


def _hdl64_elevations():
    # HDL-64E: upper block of 32 lasers +2 .. -8.33 deg, lower block of 32 -8.83 .. -24.8 deg
    return tuple(np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.8, 32)]).round(4).tolist())


SENSORS = {
    # 2083 columns = 0.173 deg per step: HDL-64E at 10 Hz as in KITTI (0.08 deg is its 5 Hz figure;
    # pass azimuth_step_deg=0.08 for that), which gives KITTI-like 100-130k points per scan
    "hdl64": SensorModel("hdl64", _hdl64_elevations(), 2083, 120.0, 0.02, 0.02),
    "vlp32": SensorModel("vlp32", tuple(np.linspace(15.0, -25.0, 32).round(4).tolist()), 1800, 200.0, 0.03, 0.02),
    "vlp16": SensorModel("vlp16", tuple(np.linspace(15.0, -15.0, 16).round(4).tolist()), 1800, 100.0, 0.03, 0.02),
}


def get_sensor(sensor: str | SensorModel, azimuth_step_deg: float | None = None) -> SensorModel:
    """The preset named ``sensor`` (``hdl64``, ``vlp32``, ``vlp16``), optionally with another azimuth step."""
    if isinstance(sensor, SensorModel):
        model = sensor
    elif sensor in SENSORS:
        model = SENSORS[sensor]
    else:
        raise PcsegValueError(f"sensor must be one of {sorted(SENSORS)}, got {sensor!r}")
    if azimuth_step_deg is not None:
        if not 0.01 <= azimuth_step_deg <= 5.0:
            raise PcsegValueError(f"azimuth_step_deg must be in [0.01, 5], got {azimuth_step_deg}")
        model = SensorModel(model.name, model.elevations_deg, int(round(360.0 / azimuth_step_deg)), model.max_range,
                            model.range_noise, model.dropout)
    return model


def scan_scene(scene: Scene, model: SensorModel, position, yaw: float, rng: np.random.Generator, noise: bool = True,
               blind_radius: float = 3.4):
    """Scan ``scene`` from a sensor at world ``position`` (3,) metres heading ``yaw`` radians.

    Returns within ``blind_radius`` metres (horizontally) are dropped: on a car roof the lowest
    beams hit the ego car itself, as in KITTI, where almost no point lies closer than ~3.5 m.

    Returns ``(xyz, intensity, labels, instance)``: float32 (N, 3) in the sensor frame (x forward,
    z up, origin at the sensor), float32 (N,) in [0, 0.99], int64 (N,) raw labels, int64 (N,)
    instance ids (0 for stuff). Points come ordered by beam (top first), then azimuth.
    """
    position = np.asarray(position, dtype=np.float64)
    elevations = np.radians(np.asarray(model.elevations_deg, dtype=np.float64))
    # the sweep starts behind the sensor, as a Velodyne's packets do
    azimuths = yaw - np.pi + np.arange(model.columns) * (2 * np.pi / model.columns)
    hits = cast(scene, position, elevations, azimuths, model.max_range, rng)
    row, col = np.nonzero(np.isfinite(hits.t))
    t = hits.t[row, col]
    solid = hits.solid[row, col]
    cos = hits.cos[row, col]
    el, az = elevations[row], azimuths[col]
    dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1)
    world = position + t[:, None] * dirs

    on_ground = solid < 0
    labels = np.empty(len(t), dtype=np.int64)
    instance = np.zeros(len(t), dtype=np.int64)
    refl = np.empty(len(t))
    labels[on_ground] = scene.ground_label(world[on_ground, 0], world[on_ground, 1])
    refl[on_ground] = scene.ground_reflectivity(world[on_ground, 0], world[on_ground, 1])
    if scene.ground_roughness is not None and on_ground.any():
        # a rough layer (grass): the ray stops a random height above the plane, i.e. earlier
        rise = scene.ground_roughness(world[on_ground, 0], world[on_ground, 1]) * rng.random(int(on_ground.sum()))
        t_ground = t[on_ground] - rise / np.maximum(-dirs[on_ground, 2], 0.05)
        t[on_ground] = np.maximum(t_ground, 0.5 * t[on_ground])
    # heights applied after the cast (Scene.ground_lift, Scene.elevation), relative to the ground under the sensor
    lift = np.zeros(len(t))
    if scene.ground_lift is not None and on_ground.any():
        lift[on_ground] = scene.ground_lift(world[on_ground, 0], world[on_ground, 1])
    if scene.elevation is not None:
        lift += scene.elevation(world[:, 0], world[:, 1]) - scene.elevation(position[None, 0], position[None, 1])[0]
    if len(scene):
        ids = solid[~on_ground]
        labels[~on_ground] = np.asarray(scene.labels, dtype=np.int64)[ids]
        instance[~on_ground] = np.asarray(scene.instances, dtype=np.int64)[ids]
        refl[~on_ground] = np.asarray(scene.reflectivity)[ids]

    keep = np.hypot(t * dirs[:, 0], t * dirs[:, 1]) >= blind_radius
    if noise:
        t = t + rng.normal(0.0, model.range_noise, len(t))
        # lost returns: random, at grazing incidence, and dark surfaces far away
        lost_p = model.dropout + (cos < 0.05) * 0.8 + 0.5 * (t / model.max_range) ** 2 * (1.0 - refl)
        # the lowest beams graze the ego car's roof and mounting: KITTI's bottom rings keep
        # only a fraction of their returns (its 4-6 m band holds ~4-8 % of the points)
        low = np.radians(min(model.elevations_deg))
        lost_p = lost_p + np.clip((np.radians(6.0) - (el - low)) / np.radians(6.0), 0.0, 1.0) * 0.8
        keep &= rng.random(len(t)) >= lost_p
        keep &= (t > 0.5) & (t < model.max_range)
    # weakly angle-dependent, as in KITTI's (partly calibrated) intensities
    intensity = refl * (0.7 + 0.3 * cos) * np.exp(-t / 300.0)
    if noise:
        intensity = intensity + rng.normal(0.0, 0.02, len(t))
    intensity = np.round(np.clip(intensity, 0.0, 0.99), 2)

    # sensor frame: rotate by -yaw about z around the sensor
    local = t[:, None] * dirs
    local[:, 2] += lift
    c, s = np.cos(yaw), np.sin(yaw)
    xyz = np.stack([c * local[:, 0] + s * local[:, 1], -s * local[:, 0] + c * local[:, 1], local[:, 2]], axis=1)
    return (xyz[keep].astype(np.float32), intensity[keep].astype(np.float32), labels[keep], instance[keep])


def lidar_scan(seed: int, sensor: str = "hdl64", *, sensor_height: float | None = None, noise: bool = True,
               azimuth_step_deg: float | None = None, return_scene: bool = False, layouts=None, ground=None):
    """One synthetic outdoor LiDAR scan of a random street scene drawn from ``seed``.

    Args:
        seed: any int; the same seed (and options) gives the identical scan.
        sensor: ``"hdl64"`` (KITTI-like, ~120k points), ``"vlp32"`` or ``"vlp16"``.
        sensor_height: metres above the ground (default: drawn in 1.6-2.0 m from the seed).
        noise: add range noise, dropout and intensity noise (False: exact ranges, for tests).
        azimuth_step_deg: override the preset's azimuth resolution.
        return_scene: also return ``(scene, position (3,), yaw)`` the scan was taken from.
        layouts: None for urban streets, or road types to draw from per seed (names from
            :data:`pcseg.synth.street.LAYOUTS`: ``urban``, ``rural``, ``highway``).
        ground: None, or ranges of the ground's details drawn per seed (``curb_height``,
            ``paved_roughness``; see :func:`pcseg.synth.street.build_street`).

    Returns:
        :class:`~pcseg.io.PointCloud` in the sensor frame (x forward, z up, ground near
        z = -sensor_height): xyz float32 (N, 3) metres, intensity float32 (N,) in [0, 0.99],
        labels int64 (N,) SemanticKITTI raw ids, instance int64 (N,) (0 for stuff classes).
    """
    model = get_sensor(sensor, azimuth_step_deg)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5CA9]))
    height = float(rng.uniform(1.6, 2.0)) if sensor_height is None else float(sensor_height)
    if not 0.2 <= height <= 10.0:
        raise PcsegValueError(f"sensor_height must be in [0.2, 10] metres, got {sensor_height}")
    x = float(rng.uniform(-15.0, 15.0))
    yaw = float(rng.normal(0.0, 0.04))
    scene, layout = build_street(seed, keep_clear=(x - 1.0, x + 1.0), layouts=layouts, ground=ground)
    y = layout.ego_lane_y + float(rng.normal(0.0, 0.2))
    position = np.array([x, y, height])
    xyz, intensity, labels, instance = scan_scene(scene, model, position, yaw, rng, noise)
    cloud = PointCloud(xyz=xyz, intensity=intensity, labels=labels, instance=instance, source=f"synth:{model.name}:seed={seed}")
    if return_scene:
        return cloud, (scene, position, yaw)
    return cloud
