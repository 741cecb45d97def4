"""Dynamic voxelization: which voxel each point falls in, voxels in ascending coordinate order.

A point ``p`` falls in voxel ``floor((p - origin) / voxel_size)`` computed in the points' own
precision; ``origin`` defaults to (0, 0, 0), so coordinates may be negative. Voxels are listed in
ascending lexicographic (x, y, z) order (batched: (batch, x, y, z)), so CPU and CUDA agree exactly.
"""

from __future__ import annotations

import torch

from pcseg.errors import PcsegValueError
from pcseg.ops._common import (
    batch_index,
    check_finite,
    check_offsets,
    check_points,
    check_vector3,
    single_offsets,
    use_extension,
)


def voxelize(points: torch.Tensor, voxel_size, origin=None):
    """Voxelize one cloud.

    Args:
        points: (N, 3) float32/float64 coordinates in metres.
        voxel_size: edge length in metres, a number or 3 numbers (x, y, z).
        origin: 3 numbers, the corner of voxel (0, 0, 0); default (0, 0, 0).

    Returns:
        coords: (V, 3) int32 voxel coordinates in ascending (x, y, z) order.
        inverse: (N,) int64, the row of ``coords`` each point falls in.
        counts: (V,) int64 number of points per voxel.
    """
    check_points("points", points, batched_ok=False, allow_empty=True, finite=False)
    offsets = single_offsets(points.shape[0], points.device)
    return _voxelize(points, offsets, voxel_size, origin, with_batch=False)


def voxelize_batched(points: torch.Tensor, offsets: torch.Tensor, voxel_size, origin=None):
    """Voxelize a ragged batch of clouds (``offsets`` as in docs/conventions.md).

    Args:
        points: (N, 3) float32/float64, clouds concatenated.
        offsets: (B,) int64 cumulative point counts, ``offsets[-1] == N``.
        voxel_size, origin: as in :func:`voxelize`, shared by all clouds.

    Returns:
        coords: (V, 4) int32 (batch, x, y, z), sorted by (batch, x, y, z).
        inverse: (N,) int64 voxel row of every point.
        counts: (V,) int64 points per voxel.
    """
    check_points("points", points, batched_ok=False, allow_empty=True, finite=False)
    offsets = check_offsets("offsets", offsets, points.shape[0], points.device)
    return _voxelize(points, offsets, voxel_size, origin)


def _voxelize(points, offsets, voxel_size, origin, with_batch=True):
    voxel_size = check_vector3("voxel_size", voxel_size, positive=True)
    origin = [0.0, 0.0, 0.0] if origin is None else check_vector3("origin", origin, positive=False)
    if use_extension("voxelize", points):  # the CPU and CUDA kernels find NaN/inf in their first pass
        try:
            return torch.ops.pcseg.voxelize(points.contiguous(), offsets, voxel_size, origin, with_batch)
        except RuntimeError as exc:  # the kernel's checks: report them as bad arguments
            if "NaN or infinite" in str(exc):
                raise PcsegValueError("points contains NaN or infinite coordinates") from None
            if "too large" in str(exc) or "int32" in str(exc):
                raise PcsegValueError(f"voxel_size {voxel_size} is too small for the extent of these points ({exc})") from None
            raise
    check_finite("points", points)
    coords, inverse, counts = voxelize_batched_reference(points, offsets, voxel_size, origin)
    return (coords if with_batch else coords[:, 1:].contiguous()), inverse, counts


def voxel_cells(points: torch.Tensor, voxel_size, origin) -> torch.Tensor:
    """(N, 3) int64 ``floor((points - origin) / voxel_size)`` in the points' precision."""
    size = torch.as_tensor(voxel_size, dtype=points.dtype, device=points.device)
    org = torch.as_tensor(origin, dtype=points.dtype, device=points.device)
    return torch.floor((points - org) / size).long()


def voxelize_batched_reference(points, offsets, voxel_size, origin):
    """Pure-PyTorch :func:`voxelize_batched` (``torch.unique`` over (batch, x, y, z) rows)."""
    cells = voxel_cells(points, voxel_size, origin)
    batch = batch_index(offsets, points.shape[0])
    rows = torch.cat([batch[:, None], cells], dim=1)
    if rows.shape[0] == 0:
        empty = torch.empty(0, dtype=torch.int64, device=points.device)
        return torch.empty((0, 4), dtype=torch.int32, device=points.device), empty, empty.clone()
    unique_rows, inverse, counts = torch.unique(rows, dim=0, sorted=True, return_inverse=True, return_counts=True)
    if int(unique_rows.min()) < -(2**31) or int(unique_rows.max()) > 2**31 - 1:
        raise PcsegValueError(f"voxel_size {list(voxel_size)} is too small: voxel coordinates do not fit in int32")
    return unique_rows.to(torch.int32), inverse, counts


def voxelize_reference(points, voxel_size, origin=None):
    """Pure-PyTorch :func:`voxelize`."""
    origin = [0.0, 0.0, 0.0] if origin is None else origin
    coords, inverse, counts = voxelize_batched_reference(
        points, single_offsets(points.shape[0], points.device), check_vector3("voxel_size", voxel_size, True), origin
    )
    return coords[:, 1:].contiguous(), inverse, counts
