"""Space-filling-curve codes of voxel coordinates: z-order (Morton) and Hilbert, plus transposes.

Point Transformer V3 orders the voxels of a cloud along a curve so that neighbours in the order
are neighbours in space, then attends within fixed-size patches of that order. The codes here
are computed from pcseg's own voxel coordinates (``pcseg.ops.voxelize_batched``'s int32
``(batch, x, y, z)`` rows, or a SparseTensor's coordinates at any stride).

Conventions:
- Each cloud's coordinates are first made relative to that cloud's own minimum, so a cloud gets
  the same codes alone or inside a ragged batch.
- Curves have :data:`DEPTH` = 16 bits per axis (coordinates 0..65535 after the shift); the full
  int64 code is ``batch << 48 | curve_code``, so sorting by code groups clouds and orders each
  one along its curve.
- z-order interleaves bits with x most significant: bit ``k`` of x, y, z lands at
  ``3k + 2``, ``3k + 1``, ``3k``.
- Hilbert codes follow J. Skilling's transposed-index algorithm ("Programming the Hilbert
  curve", AIP Conf. Proc. 707, 2004) with axis 0 (x) most significant; consecutive codes are
  always face-adjacent voxels.
- ``"z-trans"`` / ``"hilbert-trans"`` swap the x and y axes before encoding (the transposed
  curves PTv3 alternates with the plain ones).
"""

from __future__ import annotations

import torch

from pcseg.errors import PcsegValueError

DEPTH = 16
ORDERS = ("z", "z-trans", "hilbert", "hilbert-trans")


def z_order_encode(grid: torch.Tensor, depth: int = DEPTH) -> torch.Tensor:
    """Morton codes (M,) int64 of non-negative int (M, 3) coordinates below ``2**depth``."""
    g = grid.to(torch.int64)
    code = torch.zeros(g.shape[0], dtype=torch.int64, device=g.device)
    for k in range(depth):
        bits = (g >> k) & 1
        code |= (bits[:, 0] << (3 * k + 2)) | (bits[:, 1] << (3 * k + 1)) | (bits[:, 2] << (3 * k))
    return code


def hilbert_encode(grid: torch.Tensor, depth: int = DEPTH) -> torch.Tensor:
    """Hilbert indices (M,) int64 of non-negative int (M, 3) coordinates below ``2**depth``."""
    x = [grid[:, i].to(torch.int64).clone() for i in range(3)]
    q = 1 << (depth - 1)
    while q > 1:  # undo excess work: reflect / exchange low bits axis by axis
        p = q - 1
        for i in range(3):
            hit = (x[i] & q) != 0
            t = (x[0] ^ x[i]) & p
            x0_new = torch.where(hit, x[0] ^ p, x[0] ^ t)
            if i == 0:
                x[0] = x0_new
            else:
                x[i] = torch.where(hit, x[i], x[i] ^ t)
                x[0] = x0_new
        q >>= 1
    for i in range(1, 3):  # Gray encode
        x[i] = x[i] ^ x[i - 1]
    t = torch.zeros_like(x[0])
    q = 1 << (depth - 1)
    while q > 1:
        t = torch.where((x[2] & q) != 0, t ^ (q - 1), t)
        q >>= 1
    x = [v ^ t for v in x]
    code = torch.zeros_like(x[0])
    for k in range(depth - 1, -1, -1):  # transposed form -> index: x0 bit k is most significant
        for i in range(3):
            code = (code << 1) | ((x[i] >> k) & 1)
    return code


def relative_grid(coords: torch.Tensor) -> torch.Tensor:
    """(M, 3) int64 ``(x, y, z)`` of int (M, 4) ``(batch, x, y, z)`` minus each cloud's minimum."""
    c = coords.to(torch.int64)
    batch = c[:, 0]
    num_batches = int(batch.max()) + 1
    lo = torch.full((num_batches, 3), torch.iinfo(torch.int64).max, dtype=torch.int64, device=c.device)
    lo = lo.scatter_reduce(0, batch[:, None].expand(-1, 3), c[:, 1:], reduce="amin")
    grid = c[:, 1:] - lo[batch]
    if grid.numel() and int(grid.max()) >= (1 << DEPTH):
        raise PcsegValueError(
            f"serialization: a cloud spans {int(grid.max()) + 1} voxels along one axis, more than "
            f"the {1 << DEPTH} the {DEPTH}-bit curves cover; use a larger voxel size")
    return grid


def serialize(coords: torch.Tensor, order: str) -> torch.Tensor:
    """int64 codes (M,) ``batch << 48 | curve(grid)`` of int (M, 4) ``(batch, x, y, z)`` rows.

    ``order`` is one of :data:`ORDERS`. Sorting the codes groups the clouds of the batch and
    orders each cloud along the curve.
    """
    if order not in ORDERS:
        raise PcsegValueError(f"serialization order must be one of {list(ORDERS)}, got {order!r}")
    grid = relative_grid(coords)
    if order.endswith("-trans"):
        grid = grid[:, [1, 0, 2]]
    code = z_order_encode(grid) if order.startswith("z") else hilbert_encode(grid)
    return (coords[:, 0].to(torch.int64) << (3 * DEPTH)) | code
