"""PointNet++ building blocks on ragged batches: set abstraction and feature propagation.

Every tensor here is ragged (see docs/conventions.md): points of all clouds are concatenated
along the first axis and ``offsets`` int64 (B,) holds the cumulative point counts. A dense
(B, N) batch is the special case of equal counts, so one code path serves blocks and scans.

Neighbourhoods come from :mod:`pcseg.ops` (furthest-point sampling, ball query, grouping,
three-NN interpolation); this file only arranges them into layers.

Two algebraic rewrites keep the layers fast without changing what they compute:

* the first linear layer of a set-abstraction MLP acts on ``[relative xyz, features]``; its
  feature half is applied to the N input points *before* grouping (N rows instead of M*k);
* the first linear layer of a feature-propagation MLP acts on ``[interpolated, skip]``;
  interpolation is linear, so its interpolated half is applied to the coarse points *before*
  interpolating (coarse rows instead of fine rows).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from pcseg import ops as point_ops


def counts_from_offsets(offsets: torch.Tensor) -> torch.Tensor:
    """Per-cloud point counts int64 (B,) from cumulative ``offsets`` int64 (B,)."""
    return torch.diff(offsets, prepend=offsets.new_zeros(1))


def sample_counts(counts: torch.Tensor, stride: int) -> torch.Tensor:
    """Centroids kept per cloud at one level: ``ceil(count / stride)``, int64 (B,)."""
    return torch.div(counts + (stride - 1), stride, rounding_mode="floor")


# ---- the pcseg.ops calls, in one place: ragged inputs, global row indices out ----------------
def ragged_furthest_point_sample(xyz, offsets, counts):
    """Furthest-point sampling per cloud: xyz (N,3), offsets (B,), counts int64 (B,) samples per
    cloud -> int64 (sum(counts),) global row indices, cloud by cloud, each starting at the
    cloud's first point."""
    idx, _ = point_ops.furthest_point_sample_ragged(xyz, offsets, counts)
    return idx


def ragged_ball_query(xyz, offsets, centers, center_offsets, radius: float, k: int):
    """Up to k points of the same cloud within ``radius`` of each center, nearest first:
    -> int64 (M,k) global row indices of xyz, -1 padding."""
    return point_ops.ball_query(xyz, centers, radius, k, points_offsets=offsets,
                                queries_offsets=center_offsets)


def ragged_knn(xyz, offsets, queries, query_offsets, k: int):
    """k nearest points of the same cloud, nearest first -> (idx int64 (M,k) global, dist (M,k)
    Euclidean), -1 / inf padding where a cloud has fewer than k points."""
    return point_ops.knn(xyz, queries, k, points_offsets=offsets, queries_offsets=query_offsets)


def ragged_three_nn(known_xyz, known_offsets, query_xyz, query_offsets):
    """Three nearest known points of the same cloud -> (idx int64 (M,3) global, dist (M,3)
    Euclidean), -1 / inf where a cloud has fewer than three points."""
    return point_ops.three_nn(known_xyz, query_xyz, known_offsets=known_offsets,
                              unknown_offsets=query_offsets)


def folded_norm(norm: nn.BatchNorm1d):
    """Eval-mode batch norm as ``x * scale + shift`` (both (C,)); None while training.

    Folding the scale into the preceding linear layer's weight and adding the shift as its bias
    spares a full pass over the activations (the largest tensors of the network).
    """
    if norm.training or norm.running_var is None:
        return None
    scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
    return scale, norm.bias - norm.running_mean * scale


def linear_norm_relu(rows: torch.Tensor, weight: torch.Tensor, norm: nn.BatchNorm1d):
    """relu(norm(rows @ weight.T)) for rows (P, C_in), with the norm folded in eval mode."""
    folded = folded_norm(norm)
    if folded is None:
        return F.relu(norm(F.linear(rows, weight)), inplace=True)
    scale, shift = folded
    return F.relu(F.linear(rows, weight * scale.unsqueeze(1), shift), inplace=True)


class PointwiseMLP(nn.Module):
    """(Linear -> BatchNorm -> ReLU) per layer on rows: (P, in_channels) -> (P, channels[-1]).

    The linear layers have no bias because the batch norm that follows has one.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...]):
        super().__init__()
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        for out_channels in channels:
            self.linears.append(nn.Linear(in_channels, out_channels, bias=False))
            self.norms.append(nn.BatchNorm1d(out_channels))
            in_channels = out_channels
        self.out_channels = in_channels

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        for linear, norm in zip(self.linears, self.norms):
            rows = linear_norm_relu(rows, linear.weight, norm)
        return rows


class _ScaleBranch(nn.Module):
    """One radius of a set abstraction: group k neighbours, shared MLP, max pool."""

    def __init__(self, in_channels: int, radius: float, nsample: int, channels: tuple[int, ...]):
        super().__init__()
        if radius <= 0 or nsample < 1 or not channels:
            raise ValueError(f"set abstraction needs radius > 0, nsample >= 1 and an MLP; got "
                             f"radius={radius}, nsample={nsample}, mlp={channels}")
        self.radius = float(radius)
        self.nsample = int(nsample)
        self.in_channels = in_channels
        # first layer on [relative xyz / radius (3), features (in_channels)]
        self.first = nn.Linear(3 + in_channels, channels[0], bias=False)
        self.first_norm = nn.BatchNorm1d(channels[0])
        self.rest = PointwiseMLP(channels[0], tuple(channels[1:]))
        self.out_channels = channels[-1]

    def forward(self, xyz, feats, offsets, centers, center_offsets):
        """xyz (N,3), feats (N,C) or None, centers (M,3) -> pooled features (M, out_channels)."""
        idx = ragged_ball_query(xyz, offsets, centers, center_offsets, self.radius, self.nsample)
        # Padding (-1) repeats the nearest neighbour (the centroid itself, which is one of the
        # points): under max pooling a repeated row changes nothing.
        idx = torch.where(idx < 0, idx[:, :1], idx)
        folded = folded_norm(self.first_norm)
        weight, shift = self.first.weight, None
        if folded is not None:
            weight, shift = weight * folded[0].unsqueeze(1), folded[1]
        # feature half of the first layer (and the folded shift) on the N points, then gather
        projected = F.linear(feats, weight[:, 3:], shift) if self.in_channels else None
        weight_xyz = weight[:, :3]

        def pool(rows: slice):
            sub_idx = idx[rows]
            m, k = sub_idx.shape
            relative = (point_ops.group(xyz, sub_idx) - centers[rows].unsqueeze(1)) / self.radius
            relative = relative.reshape(m * k, 3)
            if projected is not None:
                grouped = point_ops.group(projected, sub_idx).reshape(m * k, -1)
                hidden = torch.addmm(grouped, relative, weight_xyz.t())
            else:
                hidden = F.linear(relative, weight_xyz, shift)
            if folded is None:
                hidden = self.first_norm(hidden)
            hidden = self.rest(F.relu(hidden, inplace=True))
            return hidden.reshape(m, k, -1).amax(dim=1)

        return map_row_chunks(pool, idx.shape[0], self.out_channels, xyz,
                              rows_per_chunk=max(1, chunk_rows(xyz.device) // self.nsample))


class SetAbstraction(nn.Module):
    """Furthest-point sampling of ``ceil(N_b / stride)`` centroids per cloud, then one branch
    per radius (ball query, grouping of relative xyz and features, shared MLP, max pool);
    several radii (multi-scale grouping, MSG) concatenate their outputs.

    forward(xyz (N,3) float, feats (N,in_channels) or None, offsets (B,) int64)
    -> (centers (M,3), features (M, out_channels), center_offsets (B,) int64).
    Radii are in the units of xyz (metres for real scans).
    """

    def __init__(self, in_channels: int, stride: int, radii, nsamples, mlps):
        super().__init__()
        if not (len(radii) == len(nsamples) == len(mlps)) or not radii:
            raise ValueError(f"one nsample and one MLP per radius: radii={radii}, "
                             f"nsamples={nsamples}, mlps={mlps}")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.stride = int(stride)
        self.branches = nn.ModuleList(
            _ScaleBranch(in_channels, r, k, tuple(mlp)) for r, k, mlp in zip(radii, nsamples, mlps)
        )
        self.out_channels = sum(b.out_channels for b in self.branches)

    def forward(self, xyz, feats, offsets):
        counts = sample_counts(counts_from_offsets(offsets), self.stride)
        center_offsets = torch.cumsum(counts, 0)
        if self.stride == 1:
            centers = xyz
        else:
            center_idx = ragged_furthest_point_sample(xyz, offsets, counts)
            centers = xyz[center_idx]
        pooled = [b(xyz, feats, offsets, centers, center_offsets) for b in self.branches]
        out = pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1)
        return centers, out, center_offsets


class FeaturePropagation(nn.Module):
    """Carry coarse features to finer points by inverse-distance weighting of the three nearest
    coarse points (per cloud), concatenate the finer level's own features (skip connection),
    then a pointwise MLP.

    forward(fine_xyz (Nf,3), fine_offsets (B,), skip (Nf,skip_channels) or None,
            coarse_xyz (Nc,3), coarse_offsets (B,), coarse (Nc,coarse_channels)) -> (Nf, out_channels)
    """

    def __init__(self, coarse_channels: int, skip_channels: int, channels: tuple[int, ...]):
        super().__init__()
        if not channels:
            raise ValueError("feature propagation needs at least one MLP layer")
        self.coarse_channels = coarse_channels
        self.skip_channels = skip_channels
        self.first = nn.Linear(coarse_channels + skip_channels, channels[0], bias=False)
        self.first_norm = nn.BatchNorm1d(channels[0])
        self.rest = PointwiseMLP(channels[0], tuple(channels[1:]))
        self.out_channels = channels[-1]

    def forward(self, fine_xyz, fine_offsets, skip, coarse_xyz, coarse_offsets, coarse, tail=None):
        """``tail`` (optional): (row-wise function, its output width), e.g. the network's head,
        applied to the output in the same row chunks under no-grad."""
        folded = folded_norm(self.first_norm)
        weight, shift = self.first.weight, None
        if folded is not None:
            # interpolation weights sum to 1, so the shift may be added before interpolating
            weight, shift = weight * folded[0].unsqueeze(1), folded[1]
        projected = F.linear(coarse, weight[:, : self.coarse_channels], shift)
        # under autocast the features may be half precision: interpolate in float32
        projected = projected.float() if projected.dtype in (torch.float16, torch.bfloat16) else projected
        idx, interp_weight = three_nn_weights(coarse_xyz, coarse_offsets, fine_xyz, fine_offsets)
        weight_skip = weight[:, self.coarse_channels:]

        def propagate(rows: slice):
            if idx is None:  # same points at both levels: nothing to interpolate
                hidden = projected[rows]
            else:
                hidden = point_ops.three_interpolate(projected, idx[rows], interp_weight[rows])
            if self.skip_channels:
                hidden = torch.addmm(hidden, skip[rows], weight_skip.t())
            if folded is None:
                hidden = self.first_norm(hidden)
            hidden = self.rest(F.relu(hidden, inplace=True))
            return tail[0](hidden) if tail is not None else hidden

        width = tail[1] if tail is not None else self.out_channels
        return map_row_chunks(propagate, fine_xyz.shape[0], width, fine_xyz,
                              rows_per_chunk=chunk_rows(fine_xyz.device))


def three_nn_weights(known_xyz, known_offsets, query_xyz, query_offsets, eps: float = 1e-8):
    """Three nearest known points of the same cloud and their inverse-distance weights.

    known_xyz (Nk,3), query_xyz (Nq,3) -> (idx int64 (Nq,3) global rows of known_xyz,
    weight (Nq,3) = 1/(d + eps) normalised to sum 1, d the Euclidean distance), or
    (None, None) when the two levels hold the same points (stride 1). A cloud with fewer than
    three known points gets weight 0 for the missing neighbours.
    """
    if known_xyz.shape[0] == query_xyz.shape[0] and torch.equal(known_offsets, query_offsets) \
            and torch.equal(known_xyz, query_xyz):
        return None, None
    idx, dist = ragged_three_nn(known_xyz, known_offsets, query_xyz, query_offsets)
    valid = idx >= 0
    idx = torch.where(valid, idx, idx[:, :1])
    inverse = torch.where(valid, 1.0 / (dist + eps), torch.zeros_like(dist))
    return idx, inverse / inverse.sum(dim=1, keepdim=True)


def chunk_rows(device: torch.device) -> int:
    """Rows per chunk for no-grad inference: small on the CPU so intermediates stay in the
    allocator's reuse range (large fresh tensors cost page faults), large on GPUs."""
    return 16_384 if device.type == "cpu" else 1 << 21


def map_row_chunks(fn, num_rows: int, width: int, like: torch.Tensor, rows_per_chunk: int):
    """fn(slice) -> (rows, width) for consecutive row slices, concatenated to (num_rows, width).

    With gradients enabled fn runs once on all rows (autograd keeps every intermediate anyway);
    without, it runs chunk by chunk into one preallocated output, which bounds peak memory and
    is several times faster on the CPU for whole scans.
    """
    if torch.is_grad_enabled() or num_rows <= rows_per_chunk:
        return fn(slice(0, num_rows))
    out = None
    for start in range(0, num_rows, rows_per_chunk):
        part = fn(slice(start, min(start + rows_per_chunk, num_rows)))
        if out is None:
            out = like.new_empty((num_rows, width), dtype=part.dtype)
        out[start:start + part.shape[0]] = part
    return out
