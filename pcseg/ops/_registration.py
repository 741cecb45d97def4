"""Fake (meta) kernels and autograd formulas of the compiled ops, registered once on first use.

Registered lazily, after ``pcseg._C`` has loaded (never at ``import pcseg``), so the schemas they
attach to exist. Fake kernels let ``torch.compile`` trace the ops; the autograd formulas give the
gradients of ``group`` and ``three_interpolate``.
"""

from __future__ import annotations

import torch

_done = {"registered": False}


def ensure_registered() -> None:
    """Register fakes and autograd formulas for every compiled op that exists (idempotent)."""
    if _done["registered"]:
        return
    _done["registered"] = True
    ops = torch.ops.pcseg
    fakes = {
        "voxelize": _voxelize_fake,
        "ball_query": _ball_query_fake,
        "knn": _knn_fake,
        "furthest_point_sample": _fps_fake,
        "group": _group_fake,
        "group_backward": _group_backward_fake,
        "three_interpolate": _three_interpolate_fake,
        "three_interpolate_backward": _three_interpolate_backward_fake,
    }
    for name, fake in fakes.items():
        if hasattr(ops, name):
            torch.library.register_fake(f"pcseg::{name}")(fake)
    if hasattr(ops, "group"):
        torch.library.register_autograd("pcseg::group", _group_backward, setup_context=_group_setup)
    if hasattr(ops, "three_interpolate"):
        torch.library.register_autograd(
            "pcseg::three_interpolate", _three_interpolate_backward, setup_context=_three_interpolate_setup
        )


def _voxelize_fake(points, offsets, voxel_size, origin, with_batch=True):
    num_voxels = torch.library.get_ctx().new_dynamic_size()
    return (
        points.new_empty((num_voxels, 4 if with_batch else 3), dtype=torch.int32),
        points.new_empty((points.shape[0],), dtype=torch.int64),
        points.new_empty((num_voxels,), dtype=torch.int64),
    )


def _ball_query_fake(points, queries, points_offsets, queries_offsets, radius, k):
    return queries.new_empty((queries.shape[0], k), dtype=torch.int64)


def _knn_fake(points, queries, points_offsets, queries_offsets, k):
    return queries.new_empty((queries.shape[0], k), dtype=torch.int64), queries.new_empty((queries.shape[0], k))


def _fps_fake(points, offsets, new_offsets, start):
    return points.new_empty((torch.library.get_ctx().new_dynamic_size(),), dtype=torch.int64)


def _group_fake(features, idx):
    return features.new_empty((idx.shape[0], idx.shape[1], idx.shape[2], features.shape[2]))


def _group_backward_fake(grad, idx, num_points):
    return grad.new_empty((grad.shape[0], num_points, grad.shape[3]))


def _three_interpolate_fake(features, idx, weight):
    return features.new_empty((idx.shape[0], idx.shape[1], features.shape[2]))


def _three_interpolate_backward_fake(grad, idx, weight, num_points):
    return grad.new_empty((grad.shape[0], num_points, grad.shape[2]))


def _group_setup(ctx, inputs, output):
    features, idx = inputs
    ctx.save_for_backward(idx)
    ctx.num_points = features.shape[1]


def _group_backward(ctx, grad):
    (idx,) = ctx.saved_tensors
    return torch.ops.pcseg.group_backward(grad.contiguous(), idx, ctx.num_points), None


def _three_interpolate_setup(ctx, inputs, output):
    features, idx, weight = inputs
    ctx.save_for_backward(features, idx, weight)


def _three_interpolate_backward(ctx, grad):
    features, idx, weight = ctx.saved_tensors
    grad = grad.contiguous()
    grad_features = grad_weight = None
    if ctx.needs_input_grad[0]:
        grad_features = torch.ops.pcseg.three_interpolate_backward(grad, idx, weight, features.shape[1])
    if ctx.needs_input_grad[2]:
        # d out[m,c] / d weight[m,k] = features[idx[m,k], c]; idx -1 reads zeros.
        grad_weight = (torch.ops.pcseg.group(features.contiguous(), idx) * grad.unsqueeze(2)).sum(-1)
    return grad_features, None, grad_weight
