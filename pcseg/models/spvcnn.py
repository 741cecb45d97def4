"""SPVCNN: a MinkUNet whose voxel stages exchange features with a full-resolution point branch.

Sparse Point-Voxel CNN (Tang et al., ECCV 2020). Next to the voxel U-Net of
:class:`pcseg.models.MinkUNet` runs a point branch holding one feature row per input point. At
four places (after the stem, at the bottleneck, half-way up and at the end) the two exchange:

- voxel -> point: every point reads the voxel features of the current stage by *trilinear*
  interpolation between the 8 voxel centres around it (``pcseg.ops.devoxelize_trilinear``),
  and adds a linear transform of its previous point features (the point branch's residual);
- point -> voxel: each voxel of the stage takes the mean of the point features inside it
  (``pcseg.ops.voxel_reduce``), so the fine point detail flows back into the voxel stages.

The logits come from the point branch, so points that share a voxel get different logits:
what keeps thin structures (poles, signs, people) a coarse grid would blur.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pcseg.errors import PcsegValueError
from pcseg.models.inputs import check_inputs
from pcseg.models.minkunet import BASE_CHANNELS, MinkUNet
from pcseg.models.point_layers import PointMLPLayer
from pcseg.sparse import SparseTensor, sparse_cat


class SPVCNN(MinkUNet):
    """Point-voxel U-Net segmenting ragged point batches.

    Args:
        num_classes: logits per point.
        in_channels: per-point feature width (e.g. 4 for xyz + intensity).
        voxel_size: stride-1 voxel edge in metres; stage ``s`` uses voxels of ``voxel_size * s``.
        layers: ``"18"``, ``"34"`` or 8 ints: residual blocks per encoder/decoder stage.
        width: channel multiplier (channels at least 8).
        dropout: dropout probability on the bottleneck and mid-decoder voxel features.

    ``forward_ragged(xyz (N,3) float32, feats (N,in_channels) float32, offsets (B,) int64)``
    returns logits (N, num_classes) for every input point.
    """

    def __init__(self, num_classes: int, in_channels: int, voxel_size: float = 0.05,
                 layers="18", width: float = 1.0, dropout: float = 0.3):
        super().__init__(num_classes, in_channels, voxel_size, layers=layers, width=width)
        if not 0.0 <= dropout < 1.0:
            raise PcsegValueError(f"SPVCNN: dropout must be in [0, 1), got {dropout}")
        cs = [max(8, int(round(c * width))) for c in BASE_CHANNELS]
        self.point_transforms = nn.ModuleList([
            PointMLPLayer(cs[0], cs[4]), PointMLPLayer(cs[4], cs[6]), PointMLPLayer(cs[6], cs[8]),
        ])
        self.dropout = nn.Dropout(dropout)

    def _trilinear(self, x: SparseTensor, xyz: torch.Tensor, batch: torch.Tensor):
        """Trilinear weights of the 8 voxel centres around each point at the stride of ``x``.

        Voxel ``c`` of stride ``s`` has its centre at ``(c + 0.5) * voxel_size * s``. Corners
        absent from ``x`` get weight 0 and the others are renormalised (the rule of
        ``pcseg.ops.devoxelize_trilinear``); the point's own voxel is always present.

        Returns:
            rows (N, 8) int64 rows of ``x`` (0 where absent), weights (N, 8) in ``x``'s dtype.
        """
        size = self.voxel_size * x.stride
        u = xyz / size - 0.5
        base = torch.floor(u)
        frac = (u - base).to(x.feats.dtype)
        base = base.long()
        bits = torch.tensor([[(k >> 2) & 1, (k >> 1) & 1, k & 1] for k in range(8)], device=xyz.device)
        weights = torch.where(bits.bool()[None], frac[:, None, :], 1 - frac[:, None, :]).prod(2)  # (N, 8)
        cells = (base[:, None, :] + bits[None]).reshape(-1, 3)
        index = x.cache.index(x.stride)
        rows = index.lookup(index.key_of(torch.cat([batch.repeat_interleave(8)[:, None], cells], 1))).view(-1, 8)
        found = rows >= 0
        weights = torch.where(found, weights, torch.zeros_like(weights))
        weights = weights / weights.sum(1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)
        return rows.clamp_min(0), weights

    def _devoxelize(self, x: SparseTensor, xyz: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """(N, C) trilinear interpolation of the stage ``x``'s voxel features at the points
        ``xyz`` (N, 3) of clouds ``batch`` (N,) int64."""
        key = ("spvcnn_trilinear", x.stride)
        if key not in x.cache.maps:
            x.cache.maps[key] = self._trilinear(x, xyz, batch)
        rows, weights = x.cache.maps[key]
        # one fused weighted gather-sum; differentiable in the voxel features
        return F.embedding_bag(rows, x.feats, per_sample_weights=weights.to(x.feats.dtype), mode="sum")

    @staticmethod
    def _voxel_of_points(x: SparseTensor, cells: torch.Tensor) -> torch.Tensor:
        """(N,) int64 row of ``x`` (stride s) holding each point, from stride-1 cells (N, 4) int64."""
        key = ("spvcnn_point_rows", x.stride)
        if key not in x.cache.maps:
            s = x.stride
            rows = cells if s == 1 else torch.cat(
                [cells[:, :1], torch.div(cells[:, 1:], s, rounding_mode="floor")], 1)
            index = x.cache.index(s)
            x.cache.maps[key] = index.lookup(index.key_of(rows))
        return x.cache.maps[key]

    def _voxelize_points(self, x: SparseTensor, z: torch.Tensor, cells: torch.Tensor) -> SparseTensor:
        """``x`` with its features replaced by the mean of the point features ``z`` in each voxel."""
        from pcseg.ops import voxel_reduce

        return x.replace_feats(voxel_reduce(z, self._voxel_of_points(x, cells), len(x), mode="mean"))

    def forward_ragged(self, xyz: torch.Tensor, feats: torch.Tensor,
                       offsets: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for every point of the ragged batch (see docs/conventions.md)."""
        check_inputs(self, xyz, feats)
        x, inverse = self.voxelize(xyz, feats, offsets)
        cells = x.coords.to(torch.int64).index_select(0, inverse)  # (N, 4) stride-1 cell per point
        x = self.stem(x)
        skips = [x]
        z0 = self._devoxelize(x, xyz, cells[:, 0])
        x = self._voxelize_points(x, z0, cells)
        for down, enc in zip(self.down, self.encoder):
            x = enc(down(x))
            skips.append(x)
        z1 = self._devoxelize(x, xyz, cells[:, 0]) + self.point_transforms[0](z0)
        x = self._voxelize_points(x, z1, cells)
        x = x.replace_feats(self.dropout(x.feats))
        z = z1
        for j, (up, dec) in enumerate(zip(self.up, self.decoder)):
            x = dec(sparse_cat([up(x), skips[3 - j]]))
            if j == 1:
                z = self._devoxelize(x, xyz, cells[:, 0]) + self.point_transforms[1](z)
                x = self._voxelize_points(x, z, cells)
                x = x.replace_feats(self.dropout(x.feats))
        z = self._devoxelize(x, xyz, cells[:, 0]) + self.point_transforms[2](z)
        return self.classifier(z)
