"""Piecewise whole-scan inference for any point model: label every point of a cloud of any size.

Works for every model of the model protocol (``forward_ragged``, ``num_classes``,
``in_channels``); the engine uses it for models trained on sampled scans (``dataset.num_points``),
whatever their class. A point network runs on clouds of a few thousand points (4,096-point room blocks, ~16k-point
LiDAR samples). :func:`predict_scan` cuts a large cloud into such pieces and puts the answers
back together so that *every* input point gets class probabilities:

1. regions: the whole cloud (``block_size=None``, LiDAR scans) or overlapping vertical
   columns of ``block_size`` x ``block_size`` metres in xy (rooms), stride ``block_stride``;
2. pieces: each region is shuffled (seeded) and split into ``ceil(n / num_points)`` pieces of
   nearly equal size. With ``cover="all"`` every piece is run, so every point passes through
   the network; with ``cover="nearest"`` only the first piece of each region is run and the
   other points of the region take the prediction of their nearest run point (``pcseg.ops.knn``);
3. votes: the softmax probabilities of every run (overlapping blocks, ``votes`` reshuffles) are
   averaged per point.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pcseg.errors import PcsegValueError
from pcseg.ops import knn

COVER_MODES = ("all", "nearest")


def block_regions(xy: torch.Tensor, block_size: float, block_stride: float) -> list[torch.Tensor]:
    """Split points into overlapping square columns; every point lands in at least one.

    xy (N,2) float coordinates in metres -> list of int64 index tensors, one per non-empty
    block. Blocks start at the cloud's minimum xy and step by ``block_stride``; a point on a
    block edge belongs to both blocks.
    """
    if not block_size > 0 or not 0 < block_stride <= block_size:
        raise PcsegValueError(f"need block_size > 0 and 0 < block_stride <= block_size, got "
                              f"block_size={block_size}, block_stride={block_stride}")
    rel = (xy.double() - xy.double().min(dim=0).values).cpu()
    extent = rel.max(dim=0).values
    cells = torch.clamp(torch.ceil((extent - block_size) / block_stride), min=0).long() + 1
    lo = torch.clamp(torch.ceil((rel - block_size) / block_stride), min=0).long()
    hi = torch.minimum(torch.floor(rel / block_stride).long(), cells - 1)
    hi = torch.maximum(hi, lo)  # guards rounding at block edges: a point always has a block
    span = int(math.ceil(block_size / block_stride)) + 1
    point_ids, block_ids = [], []
    n = rel.shape[0]
    for dx in range(span):
        for dy in range(span):
            i, j = lo[:, 0] + dx, lo[:, 1] + dy
            inside = (i <= hi[:, 0]) & (j <= hi[:, 1])
            point_ids.append(torch.arange(n)[inside])
            block_ids.append((i * cells[1] + j)[inside])
    point_ids, block_ids = torch.cat(point_ids), torch.cat(block_ids)
    order = torch.argsort(block_ids, stable=True)
    point_ids, block_ids = point_ids[order], block_ids[order]
    _, sizes = torch.unique_consecutive(block_ids, return_counts=True)
    return list(torch.split(point_ids, sizes.tolist()))


def _as_tensor(array, name: str, columns: int | None) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(array) if not torch.is_tensor(array) else array)
    if tensor.dim() != 2 or (columns is not None and tensor.shape[1] != columns):
        want = f"(N, {columns})" if columns is not None else "(N, C)"
        raise PcsegValueError(f"{name} must have shape {want}, got {tuple(tensor.shape)}")
    return tensor.float()


@torch.inference_mode()
def predict_scan(model, xyz, feats=None, *, num_points: int = 4096, block_size: float | None = None,
                 block_stride: float | None = None, votes: int = 1, cover: str = "all",
                 batch_size: int = 8, seed: int = 0, device=None):
    """Class probabilities and labels for every point of a cloud of any size.

    model: any pcseg model (``forward_ragged``, ``num_classes``, ``in_channels``); it is run in
    eval mode and its mode restored afterwards.
    xyz (N,3) float32 metres and feats (N,in_channels) float32 (None when in_channels == 0),
    numpy or torch. ``num_points``: points per network input; ``block_size``/``block_stride``
    (metres, stride defaults to half the size): overlapping xy columns for rooms, None for one
    region (LiDAR scans); ``votes``: reshuffled passes averaged; ``cover``: ``"all"`` runs every
    point, ``"nearest"`` runs ``num_points`` per region and copies to the rest by nearest
    neighbour; ``batch_size``: pieces per forward call; ``seed``: shuffling seed (same seed,
    same answer); ``device``: where to run (default: the model's device).

    Returns (labels int64 (N,), probabilities float32 (N,num_classes)) on the CPU; every row of
    probabilities sums to 1.
    """
    xyz = _as_tensor(xyz, "xyz", 3)
    n = xyz.shape[0]
    if model.in_channels and feats is None:
        raise PcsegValueError(f"feats is None but the model has in_channels={model.in_channels}")
    feats = _as_tensor(feats, "feats", model.in_channels) if model.in_channels else None
    if feats is not None and feats.shape[0] != n:
        raise PcsegValueError(f"feats has {feats.shape[0]} rows but xyz has {n}")
    if not isinstance(num_points, int) or num_points < 1:
        raise PcsegValueError(f"num_points must be a positive int, got {num_points!r}")
    if not isinstance(votes, int) or votes < 1:
        raise PcsegValueError(f"votes must be a positive int, got {votes!r}")
    if cover not in COVER_MODES:
        raise PcsegValueError(f"cover must be one of {COVER_MODES}, got {cover!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise PcsegValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if n == 0:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0, model.num_classes)
    if not bool(torch.isfinite(xyz).all()):
        raise PcsegValueError("xyz contains NaN or infinite coordinates")
    if device is None:
        device = next(model.parameters()).device

    if block_size is None:
        regions = [torch.arange(n)]
    else:
        regions = block_regions(xyz[:, :2], float(block_size),
                                float(block_stride if block_stride is not None else block_size / 2))

    generator = torch.Generator().manual_seed(seed)
    pieces = []  # (region index, point ids) in the order they are run
    for _ in range(votes):
        for r, region in enumerate(regions):
            shuffled = region[torch.randperm(region.numel(), generator=generator)]
            parts = torch.tensor_split(shuffled, math.ceil(region.numel() / num_points))
            pieces += [(r, p) for p in (parts[:1] if cover == "nearest" else parts)]

    xyz_dev = xyz.to(device)
    feats_dev = feats.to(device) if feats is not None else None
    totals = torch.zeros(n, model.num_classes, dtype=torch.float64, device=device)
    hits = torch.zeros(n, dtype=torch.float64, device=device)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(pieces), batch_size):
            batch = pieces[start:start + batch_size]
            ids = torch.cat([p for _, p in batch]).to(device)
            offsets = torch.cumsum(torch.tensor([p.numel() for _, p in batch]), 0).to(device)
            logits = model.forward_ragged(xyz_dev[ids], None if feats_dev is None else feats_dev[ids],
                                          offsets)
            probs = torch.softmax(logits.double(), dim=1)
            if cover == "nearest":
                ids, probs = _carry_to_regions(xyz_dev, batch, regions, probs, device)
            totals.index_add_(0, ids, probs)
            hits.index_add_(0, ids, torch.ones_like(ids, dtype=torch.float64))
    finally:
        model.train(was_training)
    if bool((hits == 0).any()):  # cannot happen by construction; never return silent zeros
        raise RuntimeError(f"predict_scan left {int((hits == 0).sum())} points unlabeled")
    probabilities = (totals / hits.unsqueeze(1)).float().cpu()
    return probabilities.argmax(dim=1), probabilities


def _carry_to_regions(xyz, batch, regions, probs, device):
    """Copy each run point's probabilities to every point of its region by nearest neighbour.

    Returns (point ids int64 (R,), probabilities (R, C)) for all points of the batch's regions.
    """
    run_xyz = xyz[torch.cat([p for _, p in batch]).to(device)]
    run_offsets = torch.cumsum(torch.tensor([p.numel() for _, p in batch]), 0).to(device)
    region_ids = torch.cat([regions[r] for r, _ in batch]).to(device)
    region_offsets = torch.cumsum(torch.tensor([regions[r].numel() for r, _ in batch]), 0).to(device)
    idx, _ = knn(run_xyz, xyz[region_ids], 1, points_offsets=run_offsets, queries_offsets=region_offsets)
    return region_ids, probs[idx[:, 0]]
