"""Deterministic grid clustering of predicted instance centres (torch ops: CPU and GPU alike).

Each thing point votes for its instance centre (its position plus the predicted offset). The votes
are binned into cubic cells of edge ``cell_size`` per (cloud, class); occupied cells that touch
(the 26-neighbourhood: they differ by at most one cell along every axis) are connected, and each
connected set of cells is one instance. Cells are found with :class:`pcseg.sparse.CoordIndex`
lookups and components by min-label propagation with pointer jumping, so the result depends only
on the input values: no random seeds, no atomics, the same ids on every device.
"""

from __future__ import annotations

import itertools

import torch

from pcseg.errors import PcsegValueError

# the 26 neighbour offsets of a cell (its 3x3x3 block without itself)
_NEIGHBOURS = [d for d in itertools.product((-1, 0, 1), repeat=3) if d != (0, 0, 0)]


def connected_cells(coords: torch.Tensor) -> torch.Tensor:
    """Component label of every cell: the smallest row index of the cells it connects to.

    coords: int (M, 4) unique rows (group, x, y, z); cells of different groups never connect.
    Returns int64 (M,).
    """
    from pcseg.sparse.tensor import CoordIndex

    m = coords.shape[0]
    label = torch.arange(m, device=coords.device)
    if m < 2:
        return label
    index = CoordIndex(coords, "cluster cells")
    deltas = torch.tensor(_NEIGHBOURS, dtype=torch.int64, device=coords.device)
    step = (deltas * index.key_strides).sum(1)  # key(p + d) = key(p) + step(d): see CoordIndex
    neighbours = index.lookup(index.keys[:, None] + step[None, :])  # (M, 26), -1 where empty
    neighbours = torch.where(neighbours < 0, label[:, None], neighbours)
    while True:
        new = torch.minimum(label, label[neighbours].amin(1))
        new = new[new]  # pointer jumping: a label's own label is in the same component and not larger
        if torch.equal(new, label):
            return label
        label = new


def cluster_centres(centres: torch.Tensor, semantic: torch.Tensor, offsets: torch.Tensor, things,
                    cell_size: float) -> torch.Tensor:
    """Instance ids of a ragged batch from predicted centres.

    Args:
        centres: float (N, 3) predicted instance centre of every point (metres).
        semantic: int64 (N,) predicted train ids; only points of a class in ``things`` are clustered.
        offsets: int64 (B,) ragged batch offsets (docs/conventions.md).
        things: train ids of the thing classes.
        cell_size: cell edge in metres; votes closer than this always join, votes more than
            ``2 * sqrt(3) * cell_size`` apart never directly.

    Returns:
        int64 (N,): 0 for points that are not things; instances of each cloud numbered 1, 2, ...
        in the order of (class, cell x, y, z) of their first cell. Every instance holds one class.
    """
    if not cell_size > 0:
        raise PcsegValueError(f"cell_size must be > 0, got {cell_size}")
    n = centres.shape[0]
    device = centres.device
    instance = torch.zeros(n, dtype=torch.int64, device=device)
    things_t = torch.as_tensor(list(things), dtype=torch.int64, device=device)
    mask = torch.isin(semantic, things_t)
    if not bool(mask.any()):
        return instance
    counts = torch.diff(offsets, prepend=offsets.new_zeros(1))
    batch = torch.repeat_interleave(torch.arange(len(offsets), device=device), counts)
    num_classes = int(semantic.max()) + 1
    group = batch[mask] * num_classes + semantic[mask]
    cells = torch.floor(centres[mask].double() / float(cell_size)).to(torch.int64)
    rows = torch.cat([group[:, None], cells], dim=1)
    coords, cell_of_point = torch.unique(rows, dim=0, sorted=True, return_inverse=True)
    label = connected_cells(coords)
    roots, component = torch.unique(label, sorted=True, return_inverse=True)
    # roots are the first cell of each component; cells are sorted by cloud first, so components are too
    cloud = torch.div(coords[roots, 0], num_classes, rounding_mode="floor")
    first = torch.searchsorted(cloud, cloud, side="left")
    ids = torch.arange(len(roots), device=device) - first + 1
    instance[mask] = ids[component[cell_of_point]]
    return instance
