"""Neighbour search: ball query, kNN and three_nn, for single, batched (B,N,3) and ragged clouds.

Ordering rule everywhere: nearest first by squared distance computed in the points' precision,
ties broken by the smaller point index, ``-1`` padding. The compiled kernels bucket points into a
grid (no brute force); the references below are brute force, chunked over queries.
"""

from __future__ import annotations

import torch

from pcseg.errors import PcsegValueError
from pcseg.ops._common import batch_index, batch_offsets, check_offsets, check_points, check_positive, single_offsets, use_extension

_REFERENCE_CHUNK = 256  # queries per brute-force block: bounds the (chunk, N) distance matrix


def _prepare(points, queries, points_offsets, queries_offsets):
    """Validate and flatten to the ragged form: (points, queries, p_off, q_off, batch_shape)."""
    check_points("points", points)
    check_points("queries", queries, allow_empty=True)
    if points.dtype != queries.dtype:
        raise PcsegValueError(f"points and queries must have the same dtype, got {points.dtype} and {queries.dtype}")
    if points.device != queries.device:
        raise PcsegValueError(f"points and queries must be on the same device, got {points.device} and {queries.device}")
    if points.dim() != queries.dim():
        raise PcsegValueError(f"points {tuple(points.shape)} and queries {tuple(queries.shape)} must both be (N,3) or both (B,N,3)")
    if points.dim() == 3:
        if points_offsets is not None or queries_offsets is not None:
            raise PcsegValueError("offsets are only for ragged (N,3) inputs, not batched (B,N,3) ones")
        if points.shape[0] != queries.shape[0]:
            raise PcsegValueError(f"points and queries must have the same batch size, got {points.shape[0]} and {queries.shape[0]}")
        b, n, m = points.shape[0], points.shape[1], queries.shape[1]
        p_off = batch_offsets(b, n, points.device)
        q_off = batch_offsets(b, m, points.device)
        return points.reshape(-1, 3), queries.reshape(-1, 3), p_off, q_off, (b, n, m)
    if (points_offsets is None) != (queries_offsets is None):
        raise PcsegValueError("give both points_offsets and queries_offsets, or neither")
    if points_offsets is None:
        return points, queries, single_offsets(points.shape[0], points.device), single_offsets(queries.shape[0], points.device), None
    p_off = check_offsets("points_offsets", points_offsets, points.shape[0], points.device)
    q_off = check_offsets("queries_offsets", queries_offsets, queries.shape[0], points.device)
    if p_off.numel() != q_off.numel():
        raise PcsegValueError(f"points_offsets has {p_off.numel()} clouds but queries_offsets has {q_off.numel()}")
    return points, queries, p_off, q_off, None


def _to_local(idx, batch_shape):
    """Global rows of the flattened (B*N,3) points -> per-cloud indices, shape (B, M, k)."""
    b, n, m = batch_shape
    idx = idx.view(b, m, -1)
    base = (torch.arange(b, device=idx.device) * n).view(b, 1, 1)
    return torch.where(idx >= 0, idx - base, idx)


def ball_query(points, queries, radius: float, k: int, points_offsets=None, queries_offsets=None) -> torch.Tensor:
    """The ``k`` nearest points within ``radius`` of every query.

    Args:
        points: (N,3) or (B,N,3) float32/float64.
        queries: (M,3) or (B,M,3), same dtype and device.
        radius: metres, > 0; a point counts when its squared distance <= radius**2.
        k: neighbours per query, >= 1.
        points_offsets, queries_offsets: (B,) int64 ragged offsets for (N,3)/(M,3) inputs.

    Returns:
        int64 (M,k) (global rows of ``points``) or (B,M,k) (per-cloud indices): nearest first,
        ties by smaller index, ``-1`` where fewer than ``k`` points lie within the radius.
    """
    check_positive("radius", radius)
    check_positive("k", k, integer=True)
    pts, qs, p_off, q_off, batch_shape = _prepare(points, queries, points_offsets, queries_offsets)
    if use_extension("ball_query", pts):
        idx = torch.ops.pcseg.ball_query(pts.contiguous(), qs.contiguous(), p_off, q_off, float(radius), int(k))
    else:
        idx = ball_query_reference(pts, qs, p_off, q_off, radius, k)
    return idx if batch_shape is None else _to_local(idx, batch_shape)


def knn(points, queries, k: int, points_offsets=None, queries_offsets=None):
    """The ``k`` nearest points of every query.

    Shapes as in :func:`ball_query`. Returns ``(idx, dist)``: idx int64 (M,k) or (B,M,k), dist
    Euclidean distances in the points' dtype, nearest first, ties by smaller index; ``-1`` and
    ``inf`` fill the columns beyond the size of a cloud with fewer than ``k`` points.
    """
    check_positive("k", k, integer=True)
    pts, qs, p_off, q_off, batch_shape = _prepare(points, queries, points_offsets, queries_offsets)
    if use_extension("knn", pts):
        idx, dist = torch.ops.pcseg.knn(pts.contiguous(), qs.contiguous(), p_off, q_off, int(k))
    else:
        idx, dist = knn_reference(pts, qs, p_off, q_off, k)
    if batch_shape is None:
        return idx, dist
    return _to_local(idx, batch_shape), dist.view(batch_shape[0], batch_shape[2], -1)


def three_nn(known, unknown, known_offsets=None, unknown_offsets=None):
    """The 3 nearest ``known`` points of every ``unknown`` point: ``knn(known, unknown, 3)``.

    Returns ``(idx, dist)`` like :func:`knn` (idx first; Euclidean distances).
    """
    return knn(known, unknown, 3, known_offsets, unknown_offsets)


def _squared_distances(queries, points):
    """(M, N) squared distances with the kernels' rounding: (dx*dx + dy*dy) + dz*dz."""
    diff = queries[:, None, :] - points[None, :, :]
    return diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1] + diff[..., 2] * diff[..., 2]


def _reference_search(points, queries, p_off, q_off, k, radius):
    m = queries.shape[0]
    idx = torch.full((m, k), -1, dtype=torch.int64, device=points.device)
    dist = torch.full((m, k), float("inf"), dtype=points.dtype, device=points.device)
    r2 = None
    if radius is not None:
        r = torch.tensor(radius, dtype=points.dtype)
        r2 = float(r * r)
    q_batch = batch_index(q_off, m)
    p_starts = torch.cat([p_off.new_zeros(1), p_off[:-1]])
    for b in range(p_off.numel()):
        p0, p1 = int(p_starts[b]), int(p_off[b])
        rows = (q_batch == b).nonzero().view(-1)
        if p1 == p0 or rows.numel() == 0:
            continue
        cloud = points[p0:p1]
        for c in range(0, rows.numel(), _REFERENCE_CHUNK):
            chunk = rows[c : c + _REFERENCE_CHUNK]
            d2 = _squared_distances(queries[chunk], cloud)
            if r2 is not None:
                d2 = torch.where(d2 <= r2, d2, torch.full_like(d2, float("inf")))
            # Stable sort keeps equal distances in index order: ties by the smaller index.
            order = torch.sort(d2, dim=1, stable=True)
            take = min(k, cloud.shape[0])
            best_d2 = order.values[:, :take]
            best_idx = order.indices[:, :take] + p0
            valid = torch.isfinite(best_d2)
            idx[chunk, :take] = torch.where(valid, best_idx, torch.full_like(best_idx, -1))
            # sqrt through float64: correctly rounded for float32, like the kernels' sqrt.
            dist[chunk, :take] = torch.sqrt(best_d2.double()).to(points.dtype)
    return idx, dist


def ball_query_reference(points, queries, points_offsets, queries_offsets, radius, k) -> torch.Tensor:
    """Brute-force :func:`ball_query` on ragged inputs (global indices)."""
    return _reference_search(points, queries, points_offsets, queries_offsets, k, radius)[0]


def knn_reference(points, queries, points_offsets, queries_offsets, k):
    """Brute-force :func:`knn` on ragged inputs (global indices, Euclidean distances)."""
    return _reference_search(points, queries, points_offsets, queries_offsets, k, None)
