"""Per-point input features built from a :class:`~pcseg.io.PointCloud` by name.

A config lists features in order (``[xyz, intensity]``); the model's ``in_channels`` is the sum
of their widths (:func:`feature_width`).
"""

from __future__ import annotations

import numpy as np

from pcseg.errors import PcsegValueError

# feature name -> number of channels
FEATURE_WIDTHS = {"xyz": 3, "intensity": 1, "rgb": 3, "normals": 3, "range": 1, "ones": 1,
                  "height_above_ground": 1, "relative_height": 1, "height_above_wide_ground": 1,
                  "height_above_slope_ground": 1, "roughness": 1, "normal_z": 1}
# terrain features (airborne tiles): metres divided by these, so typical values are about 0..3
TERRAIN_SCALES = {"height_above_ground": 10.0, "relative_height": 5.0, "height_above_wide_ground": 10.0}
# local-shape features (airborne tiles, pcseg.datasets.local_shape): roughness in metres / 0.5
SHAPE_SCALES = {"roughness": 0.5, "normal_z": 1.0}


def context_margin(names, default: float = 2.0) -> float:
    """Metres of context a chunk of a cloud needs so its features equal the whole cloud's nearby."""
    from pcseg.datasets.local_shape import SHAPE_RADIUS, SHAPE_VOXEL
    from pcseg.datasets.terrain import GROUND_WINDOW, SLOPE_REACH, WIDE_WINDOW

    margin = default
    if "height_above_slope_ground" in names:
        margin = max(margin, SLOPE_REACH)
    if "height_above_wide_ground" in names:
        margin = max(margin, WIDE_WINDOW * 0.6)
    if set(names) & set(TERRAIN_SCALES):
        margin = max(margin, GROUND_WINDOW * 0.6)
    if set(names) & set(SHAPE_SCALES):
        margin = max(margin, SHAPE_RADIUS + 2 * SHAPE_VOXEL)
    return margin


def feature_width(names) -> int:
    """Total channel count of a feature list, e.g. ``[xyz, intensity]`` -> 4."""
    return sum(FEATURE_WIDTHS[name] for name in names)


def build_features(xyz: np.ndarray, cloud, names, index: np.ndarray | None = None) -> np.ndarray:
    """float32 (n, C) features for the (possibly augmented) points ``xyz`` (n, 3).

    ``height_above_ground`` / ``relative_height`` (airborne tiles) are computed from ``xyz``
    (:func:`pcseg.datasets.terrain.terrain_heights`, scaled by ``TERRAIN_SCALES``): they do not
    depend on the tile's absolute position or elevation. ``height_above_slope_ground``
    (:func:`pcseg.datasets.terrain.slope_ground`, / 10) is the height above a slope-limited lower
    envelope, which reads roofs of any width as above ground; ``roughness`` and ``normal_z``
    (:func:`pcseg.datasets.local_shape.local_shape`) describe the surface around each point.

    ``cloud`` supplies the per-point fields (intensity, rgb, normals) and ``index`` (n,) picks the
    rows of ``cloud`` that ``xyz`` came from (None: all, in order). A field the cloud lacks is a
    :class:`PcsegValueError` naming the feature and the cloud's source.
    """
    columns = []
    terrain = shape = None
    for name in names:
        if name in TERRAIN_SCALES:
            if terrain is None:
                from pcseg.datasets.terrain import WIDE_WINDOW, terrain_heights

                wide = WIDE_WINDOW if "height_above_wide_ground" in names else None
                terrain = dict(zip(("height_above_ground", "relative_height", "height_above_wide_ground"),
                                   terrain_heights(xyz, wide_window=wide)))
            columns.append((terrain[name] / TERRAIN_SCALES[name]).reshape(-1, 1))
        elif name == "height_above_slope_ground":
            from pcseg.datasets.terrain import slope_ground

            columns.append((slope_ground(xyz) / 10.0).reshape(-1, 1))
        elif name in SHAPE_SCALES:
            if shape is None:
                from pcseg.datasets.local_shape import local_shape

                shape = dict(zip(("roughness", "normal_z"), local_shape(xyz)))
            columns.append((shape[name] / SHAPE_SCALES[name]).reshape(-1, 1))
        elif name == "xyz":
            columns.append(xyz)
        elif name == "range":
            columns.append(np.linalg.norm(xyz, axis=1, keepdims=True))
        elif name == "ones":
            columns.append(np.ones((len(xyz), 1), np.float32))
        else:
            values = getattr(cloud, name, None)
            if values is None:
                where = f" {cloud.source}" if getattr(cloud, "source", "") else ""
                raise PcsegValueError(
                    f"feature {name!r} requested but the cloud{where} has no {name} field "
                    f"(it has: {cloud.field_names or 'xyz only'}); drop it from dataset.features"
                )
            values = values if index is None else values[index]
            columns.append(values.reshape(len(xyz), -1))
    return np.ascontiguousarray(np.concatenate(columns, axis=1), dtype=np.float32)
