"""Per-point colours for every view mode: class labels, errors, intensity, height.

All colours are uint8 RGB. Label colours come from a :class:`pcseg.io.LabelMap` (SemanticKITTI's
official colours for SemanticKITTI) or from :func:`distinct_colors` when no map is given.
"""

from __future__ import annotations

import colorsys

import numpy as np

from pcseg.errors import PcsegValueError

MODES = ("gt", "pred", "errors", "intensity", "height", "rgb")

CORRECT_GREY = (170, 170, 170)  # errors mode: prediction right
WRONG_RED = (230, 25, 25)  # errors mode: prediction wrong
IGNORED_PALE = (225, 225, 225)  # errors mode: target ignored (not scored)


def distinct_colors(n: int) -> np.ndarray:
    """uint8 (n, 3): well separated, deterministic colours (golden-ratio hue steps, two
    lightness levels) for label maps that bring none."""
    out = np.empty((n, 3), dtype=np.uint8)
    for i in range(n):
        hue = (i * 0.618033988749895) % 1.0
        light = 0.45 if i % 2 == 0 else 0.6
        out[i] = np.round(np.array(colorsys.hls_to_rgb(hue, light, 0.75)) * 255)
    return out


def class_colors(num_classes: int, label_map=None, colors=None) -> np.ndarray:
    """uint8 (num_classes, 3): ``colors`` if given, else the label map's, else distinct ones."""
    if colors is not None:
        table = np.asarray(colors)
        if table.ndim != 2 or table.shape[1] != 3 or len(table) < num_classes:
            raise PcsegValueError(f"colors must have shape ({num_classes}, 3), got {table.shape}")
        if table.dtype.kind == "f" and table.max() <= 1.0:
            table = np.round(table * 255)
        return np.clip(table, 0, 255).astype(np.uint8)
    if label_map is not None:
        return np.asarray(label_map.colors, dtype=np.uint8)
    return distinct_colors(num_classes)


def label_colors(labels: np.ndarray, table: np.ndarray, name: str = "labels") -> np.ndarray:
    """uint8 (N, 3) colour of each train id in ``labels`` (int (N,)) from ``table`` (C, 3)."""
    labels = np.asarray(labels).reshape(-1)
    if labels.dtype.kind not in "iu":
        raise PcsegValueError(f"{name} must be integer train ids, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(table)):
        bad = labels[(labels < 0) | (labels >= len(table))]
        raise PcsegValueError(
            f"{name} has {bad.size} id(s) outside [0, {len(table)}) (e.g. {int(bad[0])}); "
            "pass train ids, or raw ids together with their label map"
        )
    return table[labels]


def error_colors(pred: np.ndarray, target: np.ndarray, ignore_index=()) -> np.ndarray:
    """uint8 (N, 3): grey where ``pred == target``, red where wrong, pale where the target is
    an ignored id (not scored)."""
    pred = np.asarray(pred).reshape(-1)
    target = np.asarray(target).reshape(-1)
    out = np.empty((len(target), 3), dtype=np.uint8)
    out[:] = WRONG_RED
    out[pred == target] = CORRECT_GREY
    if len(ignore_index):
        out[np.isin(target, list(ignore_index))] = IGNORED_PALE
    return out


def scalar_range(values: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> tuple[float, float]:
    """Robust (low, high) of a scalar field: percentiles, so a few outliers do not wash it out."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [low_pct, high_pct])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def scalar_colors(values: np.ndarray, cmap: str = "viridis", value_range=None) -> np.ndarray:
    """uint8 (N, 3): ``values`` (N,) through a matplotlib colour map over ``value_range``
    (default: 1st-99th percentile)."""
    from matplotlib import colormaps

    lo, hi = value_range or scalar_range(values)
    t = np.clip((np.asarray(values, dtype=np.float64).reshape(-1) - lo) / (hi - lo), 0.0, 1.0)
    t = np.nan_to_num(t, nan=0.0)
    rgba = colormaps[cmap](t)
    return np.round(rgba[:, :3] * 255).astype(np.uint8)


def rgb_colors(rgb: np.ndarray) -> np.ndarray:
    """uint8 (N, 3) from float RGB in [0, 1] (PointCloud.rgb)."""
    return np.round(np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0) * 255).astype(np.uint8)
