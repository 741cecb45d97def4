"""Point Transformer V3 (Wu et al., CVPR 2024): attention in patches of space-filling-curve orders.

The points are voxelized (mean features per ``grid_size`` voxel) and the voxels serialized: each
cloud's voxels are sorted along z-order and Hilbert curves and their transposes
(:mod:`pcseg.models.serialization`). Attention runs inside fixed-size patches of ``patch_size``
consecutive voxels of one order; successive blocks use successive orders (randomly permuted per
level in training), so a voxel meets different neighbours block after block. Positions enter
through a sparse 3x3x3 convolution before every block (conditional positional encoding), not
through attention biases. Between encoder stages a grid pooling merges the voxels of each 2x2x2
cell (max of a linear projection); the decoder unpools back and adds the skip features.

Patches never cross clouds: each cloud's last, shorter patch attends with a key mask, so a cloud
gets the same logits alone or in a ragged batch (in eval mode). Full patches go through
``torch.nn.functional.scaled_dot_product_attention`` without a mask, which lets CUDA pick its
flash kernel under half precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pcseg.errors import PcsegValueError
from pcseg.models.inputs import check_inputs
from pcseg.models.serialization import ORDERS, serialize
from pcseg.sparse import SparseBatchNorm, SparseTensor, SubMConv3d, voxel_to_point


class Level:
    """The voxels of one resolution: coordinates, a SparseTensor template and attention patches.

    Attributes:
        coords: (V, 4) int32 ``(batch, x, y, z)`` at this level's stride.
        template: a SparseTensor on ``coords`` (for the positional-encoding convolutions).
        patches: per order, ``(index (P, K) int64, full (P,) bool)``; index rows list the voxels of
            one patch, padded with ``V`` (a zero row) where the cloud ran out of voxels.
        parent: (V,) int64 row of the coarser level each voxel pools into (None at the top).
    """

    def __init__(self, coords: torch.Tensor, stride: int, cache, orders, patch_size: int):
        self.coords = coords
        self.stride = stride
        self.template = SparseTensor(coords.new_zeros((coords.shape[0], 1), dtype=torch.float32),
                                     coords, stride, cache=cache, check=False)
        self.orders = list(orders)
        self.parent = None
        self.patches = [patch_index(serialize(coords, o), coords[:, 0].long(), patch_size) for o in orders]

    def __len__(self) -> int:
        return self.coords.shape[0]


def patch_index(codes: torch.Tensor, batch: torch.Tensor, patch_size: int):
    """Patches of ``patch_size`` consecutive voxels in code order, restarting at every cloud.

    Args:
        codes: (V,) int64 serialization codes (batch in the high bits). batch: (V,) int64.

    Returns:
        index (P, K) int64 voxel rows (``V`` pads a cloud's last patch), full (P,) bool.
    """
    v = codes.shape[0]
    order = torch.argsort(codes)
    counts = torch.bincount(batch, minlength=int(batch.max()) + 1)
    starts = torch.cumsum(counts, 0) - counts
    num_patches = torch.div(counts + patch_size - 1, patch_size, rounding_mode="floor")
    patch_starts = torch.cumsum(num_patches, 0) - num_patches
    b_sorted = batch[order]
    pos = torch.arange(v, device=codes.device) - starts[b_sorted]
    row = patch_starts[b_sorted] + torch.div(pos, patch_size, rounding_mode="floor")
    index = torch.full((int(num_patches.sum()), patch_size), v, dtype=torch.int64, device=codes.device)
    index[row, pos % patch_size] = order
    full = (index < v).all(1)
    return index, full


class SerializedAttention(nn.Module):
    """Multi-head self-attention inside the patches of one serialization order: (V, C) -> (V, C)."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        if channels % heads:
            raise PcsegValueError(f"PointTransformerV3: {channels} channels do not split into {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, feats: torch.Tensor, index: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
        v, c = feats.shape
        p, k = index.shape
        qkv = torch.cat([self.qkv(feats), feats.new_zeros((1, 3 * c))])
        out = qkv.new_zeros((p, self.heads, k, c // self.heads))
        for rows, masked in ((torch.nonzero(full)[:, 0], False), (torch.nonzero(~full)[:, 0], True)):
            if rows.numel() == 0:
                continue
            idx = index[rows]
            q, key, val = qkv[idx].view(len(rows), k, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            mask = (idx < v)[:, None, None, :] if masked else None
            out[rows] = F.scaled_dot_product_attention(q, key, val, attn_mask=mask)
        out = out.transpose(1, 2).reshape(p * k, c)
        flat = index.reshape(-1)
        valid = flat < v
        result = qkv.new_empty((v, c))
        result[flat[valid]] = out[valid]
        return self.proj(result)


class Block(nn.Module):
    """Pre-norm transformer block with a sparse-conv positional encoding: (V, C) -> (V, C)."""

    def __init__(self, channels: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.cpe_conv = SubMConv3d(channels, channels, 3)
        self.cpe = nn.Sequential(nn.Linear(channels, channels), nn.LayerNorm(channels))
        self.norm1 = nn.LayerNorm(channels)
        self.attn = SerializedAttention(channels, heads)
        self.norm2 = nn.LayerNorm(channels)
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))

    def forward(self, feats: torch.Tensor, level: Level, order_slot: int) -> torch.Tensor:
        feats = feats + self.cpe(self.cpe_conv(level.template.replace_feats(feats)).feats)
        index, full = level.patches[order_slot % len(level.patches)]
        feats = feats + self.attn(self.norm1(feats), index, full)
        return feats + self.mlp(self.norm2(feats))


def _linear_bn_gelu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.GELU())


class PointTransformerV3(nn.Module):
    """Serialized-attention U-Net segmenting ragged point batches.

    Args:
        num_classes: logits per point.
        in_channels: per-point feature width.
        grid_size: voxel edge in metres of the first level (level ``l`` uses ``grid_size * 2**l``).
        orders: serialization orders cycled through by successive blocks (see ``ORDERS``).
        shuffle_orders: in training, permute the orders at every level of every forward pass.
        patch_size: voxels per attention patch.
        enc_depths, enc_channels, enc_heads: blocks, widths and heads of the encoder stages (a
            grid pooling precedes every stage but the first).
        dec_depths, dec_channels, dec_heads: the same for the decoder stages, finest first
            (one fewer than the encoder's).
        mlp_ratio: hidden width of the block MLPs relative to their input.

    ``forward_ragged(xyz (N,3) float32, feats (N,in_channels) float32, offsets (B,) int64)``
    returns logits (N, num_classes); points that share a first-level voxel share their logits.
    """

    def __init__(self, num_classes: int, in_channels: int, grid_size: float = 0.05,
                 orders=ORDERS, shuffle_orders: bool = True, patch_size: int = 128,
                 enc_depths=(1, 1, 2, 1), enc_channels=(32, 64, 128, 256), enc_heads=(2, 4, 8, 16),
                 dec_depths=(1, 1, 1), dec_channels=(32, 64, 128), dec_heads=(2, 4, 8),
                 mlp_ratio: float = 4.0):
        super().__init__()
        if not num_classes >= 1 or not in_channels >= 1:
            raise PcsegValueError(f"PointTransformerV3: num_classes and in_channels must be >= 1, got "
                                  f"{num_classes} and {in_channels}")
        if not grid_size > 0:
            raise PcsegValueError(f"PointTransformerV3: grid_size must be > 0, got {grid_size}")
        if not isinstance(patch_size, int) or patch_size < 1:
            raise PcsegValueError(f"PointTransformerV3: patch_size must be a positive int, got {patch_size!r}")
        orders = [str(o) for o in ([orders] if isinstance(orders, str) else orders)]
        if not orders or any(o not in ORDERS for o in orders):
            raise PcsegValueError(f"PointTransformerV3: orders must be a non-empty list of {list(ORDERS)}, got {orders}")
        n = len(enc_depths)
        if not (len(enc_channels) == len(enc_heads) == n >= 1
                and len(dec_depths) == len(dec_channels) == len(dec_heads) == n - 1):
            raise PcsegValueError(
                "PointTransformerV3: enc_depths/enc_channels/enc_heads need one entry per stage and "
                f"dec_depths/dec_channels/dec_heads one fewer; got {len(enc_depths)}/{len(enc_channels)}/"
                f"{len(enc_heads)} and {len(dec_depths)}/{len(dec_channels)}/{len(dec_heads)}")
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.grid_size = float(grid_size)
        self.orders = orders
        self.shuffle_orders = bool(shuffle_orders)
        self.patch_size = patch_size
        c0 = enc_channels[0]
        self.embedding_conv = SubMConv3d(in_channels, c0, 5, bias=False)
        self.embedding_norm = SparseBatchNorm(c0)
        self.pools = nn.ModuleList()
        self.encoder = nn.ModuleList()
        for s in range(n):
            if s > 0:
                self.pools.append(_linear_bn_gelu(enc_channels[s - 1], enc_channels[s]))
            self.encoder.append(nn.ModuleList(
                [Block(enc_channels[s], enc_heads[s], mlp_ratio) for _ in range(enc_depths[s])]))
        self.unpool_parent = nn.ModuleList()
        self.unpool_skip = nn.ModuleList()
        self.decoder = nn.ModuleList()
        prev = enc_channels[-1]
        for s in range(n - 2, -1, -1):
            self.unpool_parent.append(_linear_bn_gelu(prev, dec_channels[s]))
            self.unpool_skip.append(_linear_bn_gelu(enc_channels[s], dec_channels[s]))
            self.decoder.append(nn.ModuleList(
                [Block(dec_channels[s], dec_heads[s], mlp_ratio) for _ in range(dec_depths[s])]))
            prev = dec_channels[s]
        self.classifier = nn.Linear(prev, num_classes)

    def _level_orders(self):
        if self.training and self.shuffle_orders and len(self.orders) > 1:
            return [self.orders[i] for i in torch.randperm(len(self.orders)).tolist()]
        return self.orders

    def forward_grid(self, feats: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Logits (V, num_classes) of voxel features (V, in_channels) on int32 (V, 4) coordinates."""
        x = SparseTensor(feats, coords)
        cache = x.cache
        level = Level(coords, 1, cache, self._level_orders(), self.patch_size)
        h = F.gelu(self.embedding_norm(self.embedding_conv(x)).feats)
        levels, skips = [level], []
        for s, blocks in enumerate(self.encoder):
            if s > 0:
                skips.append(h)
                parent_coords = torch.cat(
                    [level.coords[:, :1], torch.div(level.coords[:, 1:], 2, rounding_mode="floor")], 1)
                parent_coords, parent = torch.unique(parent_coords, dim=0, return_inverse=True)
                level.parent = parent
                h = self.pools[s - 1](h)
                h = h.new_zeros((parent_coords.shape[0], h.shape[1])).scatter_reduce(
                    0, parent[:, None].expand_as(h), h, reduce="amax", include_self=False)
                level = Level(parent_coords.to(torch.int32), level.stride * 2, cache,
                              self._level_orders(), self.patch_size)
                levels.append(level)
            for slot, block in enumerate(blocks):
                h = block(h, level, slot)
        for j, blocks in enumerate(self.decoder):
            fine = levels[-2 - j]
            h = self.unpool_parent[j](h).index_select(0, fine.parent) + self.unpool_skip[j](skips[-1 - j])
            for slot, block in enumerate(blocks):
                h = block(h, fine, slot)
        return self.classifier(h)

    def forward_voxels(self, xyz: torch.Tensor, feats: torch.Tensor,
                       offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (V, num_classes) per voxel, inverse (N,) int64 point -> voxel row), the
        signature pcseg.engine.inference calls (argmax on the voxels, as for MinkUNet)."""
        from pcseg.ops import voxel_reduce, voxelize_batched

        check_inputs(self, xyz, feats)
        coords, inverse, _ = voxelize_batched(xyz, offsets, self.grid_size)
        vfeats = voxel_reduce(feats, inverse, coords.shape[0], mode="mean")
        return self.forward_grid(vfeats, coords), inverse

    def forward_ragged(self, xyz: torch.Tensor, feats: torch.Tensor,
                       offsets: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for every point of the ragged batch (see docs/conventions.md)."""
        logits, inverse = self.forward_voxels(xyz, feats, offsets)
        return voxel_to_point(logits, inverse)

    def forward(self, xyz, feats, offsets):
        return self.forward_ragged(xyz, feats, offsets)
