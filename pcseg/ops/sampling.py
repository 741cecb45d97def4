"""Furthest point sampling (single, batched (B,N,3) and ragged clouds).

The first sample is the cloud's point ``start``; each next one is the point with the largest
squared distance (points' precision) to the samples chosen so far, ties by the smaller index.
"""

from __future__ import annotations

import torch

from pcseg.errors import PcsegValueError
from pcseg.ops._common import batch_offsets, check_offsets, check_points, single_offsets, use_extension


def furthest_point_sample(points: torch.Tensor, n: int, start: int = 0) -> torch.Tensor:
    """Sample ``n`` points of a cloud, or of every cloud of a (B,N,3) batch.

    Args:
        points: (N,3) or (B,N,3) float32/float64.
        n: samples per cloud, 1 <= n <= N.
        start: local index of the first sample, 0 <= start < N.

    Returns:
        int64 (n,) or (B,n) indices into each cloud.
    """
    check_points("points", points)
    num_points = points.shape[-2]
    _check_count("n", n, num_points)
    _check_start(start, num_points)
    if points.dim() == 2:
        idx, _ = _sample(points, single_offsets(num_points, points.device), torch.tensor([n], device=points.device), start)
        return idx
    b = points.shape[0]
    offsets = batch_offsets(b, num_points, points.device)
    idx, _ = _sample(points.reshape(-1, 3), offsets, batch_offsets(b, n, points.device), start)
    base = (torch.arange(b, device=points.device) * num_points).view(b, 1)
    return idx.view(b, n) - base


def furthest_point_sample_ragged(points: torch.Tensor, offsets: torch.Tensor, n, start: int = 0):
    """Sample every cloud of a ragged batch.

    Args:
        points: (N,3) float32/float64, clouds concatenated.
        offsets: (B,) int64 cumulative point counts.
        n: samples per cloud: an int (the same for every cloud) or an int64 (B,) tensor/list.
        start: local index of each cloud's first sample.

    Returns:
        ``(idx, new_offsets)``: idx int64 (M,) global rows of ``points``, cloud by cloud;
        new_offsets int64 (B,) cumulative sample counts.
    """
    check_points("points", points, batched_ok=False)
    offsets = check_offsets("offsets", offsets, points.shape[0], points.device, allow_empty_clouds=False)
    sizes = torch.diff(offsets, prepend=offsets.new_zeros(1)).cpu()
    if isinstance(n, int) and not isinstance(n, bool):
        counts = torch.full_like(sizes, n)
    else:
        counts = torch.as_tensor(n).to(torch.int64).cpu().reshape(-1)
        if counts.numel() != sizes.numel():
            raise PcsegValueError(f"n has {counts.numel()} counts but offsets has {sizes.numel()} clouds")
    if bool((counts < 1).any()) or bool((counts > sizes).any()):
        raise PcsegValueError(f"n must be between 1 and each cloud's size; got n={counts.tolist()[:8]} for sizes {sizes.tolist()[:8]}")
    _check_start(start, int(sizes.min()))
    new_offsets = torch.cumsum(counts, 0).to(points.device)
    return _sample(points, offsets, new_offsets, start)


def _check_count(name, n, num_points):
    if isinstance(n, bool) or not isinstance(n, int):
        raise PcsegValueError(f"{name} must be an int, got {n!r}")
    if not 1 <= n <= num_points:
        raise PcsegValueError(f"{name} must be between 1 and the number of points ({num_points}), got {n}")


def _check_start(start, num_points):
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < num_points:
        raise PcsegValueError(f"start must be an int in [0, {num_points}), got {start!r}")


def _sample(points, offsets, new_offsets, start):
    if use_extension("furthest_point_sample", points):
        idx = torch.ops.pcseg.furthest_point_sample(points.contiguous(), offsets, new_offsets, int(start))
    else:
        idx = furthest_point_sample_reference(points, offsets, new_offsets, start)
    return idx, new_offsets


def furthest_point_sample_reference(points, offsets, new_offsets, start=0) -> torch.Tensor:
    """Pure-PyTorch furthest point sampling on ragged inputs (global indices)."""
    out = []
    first = 0
    first_new = 0
    for end, end_new in zip(offsets.tolist(), new_offsets.tolist()):
        cloud = points[first:end]
        samples = end_new - first_new
        chosen = torch.empty(samples, dtype=torch.int64, device=points.device)
        min_dist = torch.full((cloud.shape[0],), float("inf"), dtype=points.dtype, device=points.device)
        current = start
        for s in range(samples):
            chosen[s] = current
            diff = cloud - cloud[current]
            d = diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1] + diff[:, 2] * diff[:, 2]
            min_dist = torch.minimum(min_dist, d)
            current = int(torch.argmax(min_dist))  # first index of the maximum
        out.append(chosen + first)
        first, first_new = end, end_new
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64, device=points.device)
