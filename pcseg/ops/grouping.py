"""Grouping (gather neighbour features) and inverse-distance interpolation, with gradients.

Features are channels-last: (N,C) with idx (M,K) (ragged/single form, global indices), or
(B,N,C) with idx (B,M,K) (per-cloud indices). ``idx == -1`` contributes zeros. Code written for
PointNet++'s channels-first (B,C,N) layout passes ``channels_first=True``.
"""

from __future__ import annotations

import torch

from pcseg.errors import PcsegValueError
from pcseg.ops._common import check_features, check_index, use_extension
from pcseg.ops.neighbors import three_nn


def _batched(features, idx, name_idx="idx"):
    """-> (features (B,N,C), idx (B,M,K), was_unbatched)."""
    if features.dim() == 2:
        if idx.dim() != 2:
            raise PcsegValueError(f"{name_idx} must be (M,K) for (N,C) features, got {tuple(idx.shape)}")
        return features.unsqueeze(0), idx.unsqueeze(0), True
    if idx.dim() != 3 or idx.shape[0] != features.shape[0]:
        raise PcsegValueError(f"{name_idx} must be (B,M,K) with B={features.shape[0]} for (B,N,C) features, got {tuple(idx.shape)}")
    return features, idx, False


def _check_range(idx, num_points, name="idx"):
    if idx.numel() and (int(idx.min()) < -1 or int(idx.max()) >= num_points):
        raise PcsegValueError(f"{name} values must be in [-1, {num_points}), got [{int(idx.min())}, {int(idx.max())}]")


def group(features: torch.Tensor, idx: torch.Tensor, channels_first: bool = False) -> torch.Tensor:
    """Gather the features of every neighbour index.

    Args:
        features: (N,C) or (B,N,C) float (or (B,C,N) with ``channels_first``).
        idx: int64 (M,K) or (B,M,K); -1 gives zeros.

    Returns:
        (M,K,C) or (B,M,K,C); with ``channels_first``, (B,C,M,K). Differentiable in ``features``.
    """
    check_features("features", features, (2, 3))
    idx = check_index("idx", idx, (2, 3))
    if channels_first:
        if features.dim() != 3:
            raise PcsegValueError("channels_first needs (B,C,N) features")
        features = features.transpose(1, 2)
    if features.device != idx.device:
        raise PcsegValueError(f"features and idx must be on the same device, got {features.device} and {idx.device}")
    feats, ix, unbatched = _batched(features, idx)
    _check_range(ix, feats.shape[1])
    if use_extension("group", feats):
        out = torch.ops.pcseg.group(feats.contiguous(), ix.contiguous())
    else:
        out = group_reference(feats, ix)
    if unbatched:
        return out[0]
    return out.permute(0, 3, 1, 2) if channels_first else out


def group_reference(features: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(B,N,C), (B,M,K) -> (B,M,K,C) with torch indexing; -1 gives zeros."""
    b, m, k = idx.shape
    safe = idx.clamp(min=0)
    gathered = torch.gather(features, 1, safe.reshape(b, m * k, 1).expand(-1, -1, features.shape[2]))
    gathered = gathered.view(b, m, k, -1)
    return torch.where((idx >= 0).unsqueeze(-1), gathered, torch.zeros_like(gathered))


def three_interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor, channels_first: bool = False):
    """Weighted sum of neighbour features: ``out[m] = sum_k weight[m,k] * features[idx[m,k]]``.

    Args:
        features: (N,C) or (B,N,C) (or (B,C,N) with ``channels_first``).
        idx: int64 (M,K) or (B,M,K), -1 contributes nothing.
        weight: like ``idx``, the features' dtype.

    Returns:
        (M,C) or (B,M,C) (or (B,C,M) with ``channels_first``). Differentiable in features and weight.
    """
    check_features("features", features, (2, 3))
    idx = check_index("idx", idx, (2, 3))
    check_features("weight", weight, (2, 3))
    if weight.shape != idx.shape:
        raise PcsegValueError(f"weight must have the shape of idx {tuple(idx.shape)}, got {tuple(weight.shape)}")
    if weight.dtype != features.dtype:
        raise PcsegValueError(f"weight must have the dtype of features ({features.dtype}), got {weight.dtype}")
    if channels_first:
        if features.dim() != 3:
            raise PcsegValueError("channels_first needs (B,C,N) features")
        features = features.transpose(1, 2)
    feats, ix, unbatched = _batched(features, idx)
    w = weight.unsqueeze(0) if unbatched else weight
    _check_range(ix, feats.shape[1])
    if use_extension("three_interpolate", feats):
        out = torch.ops.pcseg.three_interpolate(feats.contiguous(), ix.contiguous(), w.contiguous())
    else:
        out = three_interpolate_reference(feats, ix, w)
    if unbatched:
        return out[0]
    return out.transpose(1, 2) if channels_first else out


def three_interpolate_reference(features, idx, weight):
    """(B,N,C), (B,M,K), (B,M,K) -> (B,M,C) with torch ops."""
    gathered = group_reference(features, idx)
    w = torch.where(idx >= 0, weight, torch.zeros_like(weight))
    return (gathered * w.unsqueeze(-1)).sum(dim=2)


def three_nn_weights(dist: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Inverse-distance weights ``1/(d+eps)`` normalised over the last axis; inf distances get 0."""
    inv = 1.0 / (dist + eps)
    inv = torch.where(torch.isfinite(dist), inv, torch.zeros_like(inv))
    return inv / inv.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(dist.dtype).tiny)


def interpolate_features(known, known_features, unknown, known_offsets=None, unknown_offsets=None):
    """PointNet++ feature propagation: features of ``unknown`` points from their 3 nearest known ones.

    Shapes: known (N,3)/(B,N,3), known_features (N,C)/(B,N,C), unknown (M,3)/(B,M,3)
    (ragged with offsets as in :func:`pcseg.ops.knn`). Returns (M,C) / (B,M,C).
    """
    idx, dist = three_nn(known, unknown, known_offsets, unknown_offsets)
    return three_interpolate(known_features, idx, three_nn_weights(dist).to(known_features.dtype))
