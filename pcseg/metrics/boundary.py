"""Boundary quality: scores restricted to points near a change of ground-truth class."""

from __future__ import annotations

import numpy as np

from pcseg.errors import PcsegValueError


def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor: the KD-tree works on host memory
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def boundary_mask(points, target, radius: float, ignore_index=()) -> np.ndarray:
    """bool (N,): points that have a target point of a *different* class within ``radius``.

    Args:
        points: float (N, 3) coordinates in metres (numpy or torch).
        target: integer (N,) ground-truth train ids.
        radius: search radius in metres (> 0).
        ignore_index: train ids that define no boundary: an ignored neighbour does not make a
            point a boundary point, and ignored points are never boundary points.

    Exact: every pair of points closer than ``radius`` is inspected (scipy cKDTree).
    """
    from scipy.spatial import cKDTree

    xyz = _to_numpy(points, "points")
    labels = _to_numpy(target, "target").reshape(-1)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise PcsegValueError(f"points must have shape (N, 3), got {xyz.shape}")
    if len(labels) != len(xyz):
        raise PcsegValueError(f"points has {len(xyz)} rows but target has {len(labels)} labels")
    if not np.isfinite(radius) or radius <= 0:
        raise PcsegValueError(f"radius must be a positive distance in metres, got {radius!r}")
    ignore = np.atleast_1d(np.asarray(list(ignore_index) if not np.isscalar(ignore_index) else [ignore_index]))
    labeled = ~np.isin(labels, ignore) if ignore.size else np.ones(len(labels), dtype=bool)

    idx = np.flatnonzero(labeled)
    mask = np.zeros(len(labels), dtype=bool)
    if len(idx) < 2:
        return mask
    tree = cKDTree(np.asarray(xyz[idx], dtype=np.float64))
    pairs = tree.query_pairs(float(radius), output_type="ndarray")
    lab = labels[idx]
    differ = pairs[lab[pairs[:, 0]] != lab[pairs[:, 1]]]
    mask[idx[differ[:, 0]]] = True
    mask[idx[differ[:, 1]]] = True
    return mask


def boundary_confusion(points, pred, target, radius: float, like):
    """A new confusion matrix of ``like``'s type (same classes and ignore ids) counting only
    the boundary points of one scan; merge several to score boundaries over a dataset. (Built
    from ``like`` so this module needs no import of :mod:`pcseg.metrics.confusion`, which imports
    it: no import cycle.)

    ``points`` float (N, 3) metres, ``pred``/``target`` integer (N,) train ids, ``radius`` metres.
    """
    pred_np = _to_numpy(pred, "pred").reshape(-1)
    target_np = _to_numpy(target, "target").reshape(-1)
    if pred_np.shape != target_np.shape:
        raise PcsegValueError(f"pred has {pred_np.size} labels but target has {target_np.size}")
    mask = boundary_mask(points, target_np, radius, like.ignore_index)
    cm = type(like)(like.num_classes, like.ignore_index, like.class_names)
    if mask.any():
        cm.update(pred_np[mask], target_np[mask])
    return cm
