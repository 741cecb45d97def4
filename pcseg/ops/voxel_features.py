"""Features per voxel and back: hard voxelization, voxel reduction, devoxelization.

Built from :func:`pcseg.ops.voxelize` plus torch scatter/gather ops, so they run on every device
and are differentiable where features flow (reduce, devoxelize).
"""

from __future__ import annotations

import torch

from pcseg.errors import PcsegValueError
from pcseg.ops._common import batch_index, check_features, check_offsets, check_points, check_positive, check_vector3
from pcseg.ops.voxelize import voxelize


def hard_voxelize(points, voxel_size, max_points_per_voxel: int, max_voxels: int | None = None, origin=None, features=None):
    """Voxelization with at most ``P`` points per voxel and at most ``max_voxels`` voxels.

    Deterministic: voxels are ordered by their first point (input order, as mmcv/spconv do), each
    keeps its first ``P`` points in input order, and the first ``max_voxels`` voxels are kept.

    Args:
        points: (N,3) float32/float64. features: (N,C) per-point features to pack (default: points).
        voxel_size, origin: as in :func:`pcseg.ops.voxelize`.

    Returns:
        voxels (V,P,C) zero-padded, coords int32 (V,3), num_points int64 (V,) (<= P).
    """
    check_points("points", points, batched_ok=False)
    check_positive("max_points_per_voxel", max_points_per_voxel, integer=True)
    if max_voxels is not None:
        check_positive("max_voxels", max_voxels, integer=True)
    feats = points if features is None else check_features("features", features, (2,))
    if feats.shape[0] != points.shape[0]:
        raise PcsegValueError(f"features has {feats.shape[0]} rows but points has {points.shape[0]}")
    coords, inverse, counts = voxelize(points, voxel_size, origin)
    n, num_voxels = points.shape[0], coords.shape[0]
    arange = torch.arange(n, device=points.device)
    first = torch.full((num_voxels,), n, dtype=torch.int64, device=points.device)
    first.scatter_reduce_(0, inverse, arange, reduce="amin")
    voxel_order = torch.argsort(first)  # first points are distinct: a total order
    rank = torch.empty_like(voxel_order)
    rank[voxel_order] = torch.arange(num_voxels, device=points.device)
    new_inverse = rank[inverse]
    perm = torch.sort(new_inverse, stable=True).indices  # by voxel, then input order
    sorted_voxel = new_inverse[perm]
    starts = torch.cumsum(counts[voxel_order], 0) - counts[voxel_order]
    slot = torch.arange(n, device=points.device) - starts[sorted_voxel]
    kept_voxels = num_voxels if max_voxels is None else min(num_voxels, max_voxels)
    keep = (slot < max_points_per_voxel) & (sorted_voxel < kept_voxels)
    voxels = feats.new_zeros((kept_voxels, max_points_per_voxel, feats.shape[1]))
    voxels[sorted_voxel[keep], slot[keep]] = feats[perm[keep]]
    kept = voxel_order[:kept_voxels]
    return voxels, coords[kept], counts[kept].clamp(max=max_points_per_voxel)


def voxel_reduce(feats: torch.Tensor, inverse: torch.Tensor, num_voxels: int, mode: str = "mean") -> torch.Tensor:
    """Reduce point features (N,C) into (num_voxels, C) by ``inverse`` (N,) with "mean" or "max".

    Differentiable (max routes the gradient to the arg-max point(s), as torch's scatter_reduce does).
    """
    check_features("feats", feats, (2,))
    if not isinstance(inverse, torch.Tensor) or inverse.dtype != torch.int64 or inverse.shape != (feats.shape[0],):
        raise PcsegValueError(f"inverse must be int64 of shape ({feats.shape[0]},)")
    if isinstance(num_voxels, bool) or not isinstance(num_voxels, int) or num_voxels < 0:
        raise PcsegValueError(f"num_voxels must be a non-negative int, got {num_voxels!r}")
    if inverse.numel() and (int(inverse.min()) < 0 or int(inverse.max()) >= num_voxels):
        raise PcsegValueError(f"inverse values must be in [0, {num_voxels})")
    out = feats.new_zeros((num_voxels, feats.shape[1]))
    if mode == "mean" and feats.device.type == "cpu":
        # a row sum in point order and one division: the same values as scatter_reduce's mean,
        # 10x faster on the CPU (on CUDA index_add_ adds with atomics, in no fixed order)
        counts = torch.bincount(inverse, minlength=num_voxels).clamp_min(1).to(feats.dtype)
        return out.index_add(0, inverse, feats) / counts.unsqueeze(1)
    index = inverse.unsqueeze(1).expand(-1, feats.shape[1])
    if mode == "mean":
        return out.scatter_reduce(0, index, feats, reduce="mean", include_self=False)
    if mode == "max":
        return out.scatter_reduce(0, index, feats, reduce="amax", include_self=False)
    raise PcsegValueError(f"mode must be 'mean' or 'max', got {mode!r}")


def devoxelize_nearest(voxel_feats: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """Every point takes its voxel's features: (V,C), (N,) -> (N,C)."""
    check_features("voxel_feats", voxel_feats, (2,))
    if not isinstance(inverse, torch.Tensor) or inverse.dtype != torch.int64 or inverse.dim() != 1:
        raise PcsegValueError("inverse must be an int64 (N,) tensor")
    return voxel_feats[inverse]


def devoxelize_trilinear(voxel_feats, coords, points, voxel_size, origin=None, points_offsets=None) -> torch.Tensor:
    """Trilinear interpolation of voxel features at points.

    Each voxel's features sit at its centre ``origin + (coord + 0.5) * voxel_size``; a point blends
    the 8 voxel centres around it with trilinear weights. Voxels absent from ``coords`` get weight
    0 and the others are renormalised; a point with none of its 8 voxels present gets zeros.

    Args:
        voxel_feats: (V,C). coords: int (V,3), or (V,4) (batch, x, y, z) with ``points_offsets``.
        points: (N,3). voxel_size, origin: as in :func:`pcseg.ops.voxelize`.
        points_offsets: (B,) ragged offsets of ``points`` when coords carry a batch column.

    Returns:
        (N,C), differentiable in ``voxel_feats``.
    """
    check_features("voxel_feats", voxel_feats, (2,))
    check_points("points", points, batched_ok=False, allow_empty=True)
    size = torch.tensor(check_vector3("voxel_size", voxel_size, positive=True), dtype=points.dtype, device=points.device)
    org = torch.tensor([0.0, 0.0, 0.0] if origin is None else check_vector3("origin", origin, False), dtype=points.dtype, device=points.device)
    width = 4 if points_offsets is not None else 3
    if not isinstance(coords, torch.Tensor) or coords.dim() != 2 or coords.shape[1] != width or coords.is_floating_point():
        raise PcsegValueError(f"coords must be an integer (V,{width}) tensor" + (" (batch, x, y, z)" if width == 4 else ""))
    if coords.shape[0] != voxel_feats.shape[0]:
        raise PcsegValueError(f"coords has {coords.shape[0]} rows but voxel_feats has {voxel_feats.shape[0]}")
    coords = coords.long()
    if points_offsets is not None:
        offsets = check_offsets("points_offsets", points_offsets, points.shape[0], points.device)
        point_batch = batch_index(offsets, points.shape[0])
        voxel_batch, cells = coords[:, 0], coords[:, 1:]
    else:
        point_batch = torch.zeros(points.shape[0], dtype=torch.int64, device=points.device)
        voxel_batch, cells = torch.zeros_like(coords[:, 0]), coords
    if cells.shape[0] == 0 or points.shape[0] == 0:
        return voxel_feats.new_zeros((points.shape[0], voxel_feats.shape[1]))
    u = (points - org) / size - 0.5
    base = torch.floor(u)
    frac = (u - base).to(voxel_feats.dtype)
    base = base.long()
    lo = torch.minimum(cells.min(0).values, base.min(0).values)
    extent = torch.maximum(cells.max(0).values, base.max(0).values + 1) - lo + 1

    def pack(batch, c):
        c = c - lo
        return ((batch * extent[0] + c[:, 0]) * extent[1] + c[:, 1]) * extent[2] + c[:, 2]

    keys, order = torch.sort(pack(voxel_batch, cells))
    out = voxel_feats.new_zeros((points.shape[0], voxel_feats.shape[1]))
    total = voxel_feats.new_zeros((points.shape[0],))
    for corner in range(8):
        bits = torch.tensor([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1], device=points.device)
        w = torch.prod(torch.where(bits.bool(), frac, 1 - frac), dim=1)
        query = pack(point_batch, base + bits)
        pos = torch.searchsorted(keys, query).clamp(max=keys.numel() - 1)
        found = keys[pos] == query
        w = torch.where(found, w, torch.zeros_like(w))
        out = out + w.unsqueeze(1) * voxel_feats[order[pos]]
        total = total + w
    return out / total.clamp_min(torch.finfo(total.dtype).tiny).unsqueeze(1)
