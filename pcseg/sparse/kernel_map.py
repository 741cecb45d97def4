"""Kernel maps: for every kernel offset, which input voxel feeds which output voxel.

A :class:`KernelMap` lists ``(in_idx, out_idx)`` pairs grouped by kernel offset, offsets in the
order of the flattened weight ``(k, k, k)`` (x slowest, z fastest). For a kernel offset
``(i, j, l)`` the pair links output site ``q`` to the input site
``conv_stride * q + ((i, j, l) - padding) * dilation``; a submanifold map uses
``conv_stride = 1`` and ``padding = k // 2`` and its outputs are its inputs.

Maps come from a hash table of the input coordinates: the C++ CPU / CUDA op
``torch.ops.pcseg.sparse_kernel_map`` when the extension is built, else a sorted-key search in
pure PyTorch (same pairs, same order).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pcseg.errors import PcsegValueError
from pcseg.sparse.tensor import KEY_MARGIN, CoordIndex


@dataclass
class KernelMap:
    """Pairs of one convolution, grouped by kernel offset.

    Attributes:
        in_idx: (P,) int64 input rows.
        out_idx: (P,) int64 output rows; within one offset every output (and input) row appears
            at most once, which is what makes the scatter deterministic without atomics.
        counts: K python ints, the number of pairs of each offset (offsets with none included).
        num_in, num_out: row counts of the input and output tensors.
        identity_offset: for submanifold maps with odd k, the centre offset whose pairs are the
            identity (they are not stored: the layer applies that weight as one plain GEMM).
    """

    in_idx: torch.Tensor
    out_idx: torch.Tensor
    counts: list
    num_in: int
    num_out: int
    identity_offset: int | None = None

    def transposed(self) -> "KernelMap":
        """The map of the transposed convolution (outputs become inputs)."""
        return KernelMap(self.out_idx, self.in_idx, self.counts, self.num_out, self.num_in,
                         self.identity_offset)


def kernel_offsets(kernel_size: int, dilation: int, padding: int, device) -> torch.Tensor:
    """(k^3, 3) int64 offsets ``((i, j, l) - padding) * dilation``, x slowest, z fastest."""
    r = torch.arange(kernel_size, dtype=torch.int64, device=device)
    g = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    return (g - padding) * dilation


def _check_reach(kernel_size: int, dilation: int, conv_stride: int) -> None:
    if (kernel_size - 1) * dilation + conv_stride > KEY_MARGIN:
        raise PcsegValueError(
            f"kernel_size={kernel_size}, dilation={dilation}, stride={conv_stride}: the kernel "
            f"reaches over {KEY_MARGIN} voxels, more than pcseg.sparse supports"
        )


def _query(index: CoordIndex, base_keys: torch.Tensor, deltas: torch.Tensor,
           skip: int | None, use_ext: bool):
    """Pairs for query keys ``base_keys[o] + deltas[k]``: (in_idx, out_idx, counts)."""
    skip_arg = -1 if skip is None else skip
    if use_ext and base_keys.device.type == "cpu":
        # CPU: a merge join of sorted keys streams through memory, faster than hash probes
        if base_keys is index.keys:
            query_sorted, query_order = index.sorted_keys, index.order
        else:
            query_sorted, query_order = torch.sort(base_keys)
        in_idx, out_idx, counts = torch.ops.pcseg.sparse_kernel_map_sorted(
            index.sorted_keys, index.order, query_sorted, query_order, deltas, skip_arg)
        return in_idx, out_idx, counts.tolist()
    if use_ext:
        in_idx, out_idx, counts = torch.ops.pcseg.sparse_kernel_map(index.keys, base_keys, deltas, skip_arg)
        return in_idx, out_idx, counts.tolist()
    ins, outs, counts = [], [], []
    rows = torch.arange(base_keys.numel(), device=base_keys.device)
    for k in range(deltas.numel()):
        if k == skip:
            counts.append(0)
            continue
        found = index.lookup(base_keys + deltas[k])
        hit = found >= 0
        ins.append(found[hit])
        outs.append(rows[hit])
        counts.append(int(ins[-1].numel()))
    empty = torch.empty(0, dtype=torch.int64, device=base_keys.device)
    return (torch.cat(ins) if ins else empty, torch.cat(outs) if outs else empty, counts)


def submanifold_map(index: CoordIndex, kernel_size: int, dilation: int,
                    use_ext: bool) -> KernelMap:
    """Map of a submanifold conv on the coordinates of ``index`` (outputs = inputs)."""
    _check_reach(kernel_size, dilation, 1)
    offs = kernel_offsets(kernel_size, dilation, kernel_size // 2, index.keys.device)
    deltas = (offs * index.key_strides).sum(1)
    centre = (offs.shape[0] // 2) if kernel_size % 2 == 1 else None
    n = index.keys.numel()
    if centre is None:
        in_idx, out_idx, counts = _query(index, index.keys, deltas, centre, use_ext)
    else:
        # Offsets k and K-1-k are opposite: (i, o) pairs of one are the (o, i) pairs of the other,
        # so only the first half is searched.
        in_idx, out_idx, counts = _query(index, index.keys, deltas[:centre], None, use_ext)
        groups = list(zip(torch.split(in_idx, counts), torch.split(out_idx, counts)))
        in_idx = torch.cat([in_idx] + [o for _, o in reversed(groups)])
        out_idx = torch.cat([out_idx] + [i for i, _ in reversed(groups)])
        counts = counts + [0] + counts[::-1]
    if centre is not None:
        counts[centre] = n
    return KernelMap(in_idx, out_idx, counts, n, n, centre)


def downsample_coords(coords: torch.Tensor, kernel_size: int, conv_stride: int, padding: int,
                      dilation: int) -> torch.Tensor:
    """Output coordinates (M, 4) int32 of a strided sparse conv, sorted by (batch, x, y, z).

    Output ``q`` exists when some input ``p = conv_stride * q + (i - padding) * dilation``.
    For ``kernel_size == conv_stride`` and no padding this is ``floor(p / conv_stride)``.
    """
    c = coords.to(torch.int64)
    if kernel_size == conv_stride and padding == 0 and dilation == 1:
        cand = torch.cat([c[:, :1], torch.div(c[:, 1:], conv_stride, rounding_mode="floor")], 1)
    else:
        offs = kernel_offsets(kernel_size, dilation, padding, c.device)
        shifted = c[:, None, 1:] - offs[None]  # (N, K, 3) = conv_stride * q
        ok = (torch.remainder(shifted, conv_stride) == 0).all(-1)
        q = torch.div(shifted, conv_stride, rounding_mode="floor")
        b = c[:, None, :1].expand(-1, offs.shape[0], 1)
        cand = torch.cat([b, q], -1)[ok]
    lo = cand.amin(0)
    span = cand.amax(0) - lo + 1
    sx, sy, sz = (int(v) for v in span[1:].tolist())
    key = (((cand[:, 0] - lo[0]) * sx + cand[:, 1] - lo[1]) * sy + cand[:, 2] - lo[2]) * sz \
        + cand[:, 3] - lo[3]
    key = torch.unique(key)  # sorted: (batch, x, y, z) lexicographic
    z = key % sz
    key = key // sz
    y = key % sy
    key = key // sy
    x = key % sx
    b = key // sx
    out = torch.stack([b + lo[0], x + lo[1], y + lo[2], z + lo[3]], 1)
    return out.to(torch.int32)


def downsample_map(index: CoordIndex, out_coords: torch.Tensor, kernel_size: int,
                   conv_stride: int, padding: int, dilation: int, use_ext: bool) -> KernelMap:
    """Map of a strided conv from the coordinates of ``index`` to ``out_coords``."""
    _check_reach(kernel_size, dilation, conv_stride)
    offs = kernel_offsets(kernel_size, dilation, padding, out_coords.device)
    deltas = (offs * index.key_strides).sum(1)
    base = out_coords.to(torch.int64).clone()
    base[:, 1:] *= conv_stride
    in_idx, out_idx, counts = _query(index, index.key_of(base), deltas, None, use_ext)
    return KernelMap(in_idx, out_idx, counts, index.keys.numel(), out_coords.shape[0], None)


def pooling_map(coords: torch.Tensor, conv_stride: int) -> tuple[torch.Tensor, KernelMap]:
    """Output coords and map of a conv with ``kernel_size == stride``, no padding, no dilation.

    Each input ``p`` then feeds exactly one output, ``q = floor(p / s)``, through the offset
    ``p - s * q``, so the map comes straight from the unique output rows (no hash search).
    Returns the same coordinates (sorted) and the same pairs as :func:`downsample_coords` +
    :func:`downsample_map`, pairs ascending in input row within an offset.
    """
    c = coords.to(torch.int64)
    q = torch.div(c[:, 1:], conv_stride, rounding_mode="floor")
    within = c[:, 1:] - q * conv_stride  # (N, 3) in [0, s)
    offset = (within[:, 0] * conv_stride + within[:, 1]) * conv_stride + within[:, 2]
    lo = q.amin(0)
    span = q.amax(0) - lo + 1
    sx, sy, sz = (int(v) for v in span.tolist())
    key = ((c[:, 0] * sx + q[:, 0] - lo[0]) * sy + q[:, 1] - lo[1]) * sz + q[:, 2] - lo[2]
    key_out, inverse = torch.unique(key, return_inverse=True)  # sorted: (batch, x, y, z)
    z = key_out % sz
    rest = key_out // sz
    y = rest % sy
    rest = rest // sy
    out = torch.stack([rest // sx, rest % sx + lo[0], y + lo[1], z + lo[2]], 1).to(torch.int32)
    offset_sorted, in_idx = torch.sort(offset, stable=True)
    counts = torch.bincount(offset_sorted, minlength=conv_stride**3).tolist()
    kmap = KernelMap(in_idx, inverse[in_idx], counts, coords.shape[0], out.shape[0], None)
    return out, kmap
