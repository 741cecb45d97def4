"""FastVoxelNet: a lean point-voxel network that labels a full LiDAR scan in real time on a CPU.

Design (chosen by measurement, see docs/models.md): the cost of a sparse U-Net on a CPU is the
number of (voxel, kernel offset) pairs times the channel widths, so this network keeps coarse
voxels (0.4 m by default), narrow channels and a single submanifold convolution per stage, and
recovers the detail a coarse grid loses with a cheap per-point branch:

1. point encoder: an MLP on each point's features plus its offset from its voxel centre;
2. the point features are max-pooled into their voxels and run through a 4-level sparse U-Net
   (one 3x3x3 submanifold conv per level, 2x2x2 strided down / inverse up, skip concatenation);
3. point head: every point concatenates its voxel's decoder features with its own encoder
   features and an MLP gives its logits, so points that share a voxel can get different labels.
"""

from __future__ import annotations

import torch
from torch import nn

from pcseg.errors import PcsegValueError
from pcseg.models.inputs import check_inputs
from pcseg.models.point_layers import PointMLPLayer, RowBatchNorm
from pcseg.sparse import (
    Featurewise,
    SparseConv3d,
    SparseInverseConv3d,
    SparseReLU,
    SparseTensor,
    SubMConv3d,
    sparse_cat,
    voxel_to_point,
)


def _cbr(conv, cout):
    return nn.Sequential(conv, Featurewise(RowBatchNorm(cout)), SparseReLU(inplace=True))


class FastVoxelNet(nn.Module):
    """Real-time point-voxel segmentation network for ragged point batches.

    Args:
        num_classes: logits per point.
        in_channels: per-point feature width (e.g. 4 for xyz + intensity).
        voxel_size: voxel edge in metres of the finest sparse level.
        channels: widths of the 4 sparse levels (strides 1, 2, 4, 8).
        point_channels: width of the per-point encoder.

    ``forward_ragged(xyz (N,3) float32, feats (N,in_channels) float32, offsets (B,) int64)``
    returns logits (N, num_classes) for every input point.
    """

    def __init__(self, num_classes: int, in_channels: int, voxel_size: float = 0.4,
                 channels=(16, 32, 48, 64), point_channels: int = 16):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) != 4 or min(channels) < 1 or point_channels < 1:
            raise PcsegValueError(f"FastVoxelNet: channels needs 4 positive ints and point_channels > 0, "
                                  f"got {channels} and {point_channels}")
        if not num_classes >= 1 or not in_channels >= 1:
            raise PcsegValueError(f"FastVoxelNet: num_classes and in_channels must be >= 1, got "
                                  f"{num_classes} and {in_channels}")
        if not voxel_size > 0:
            raise PcsegValueError(f"FastVoxelNet: voxel_size must be > 0, got {voxel_size}")
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.voxel_size = float(voxel_size)
        self.channels = channels
        c = channels
        self.point_encoder = nn.Sequential(PointMLPLayer(in_channels + 3, point_channels),
                                           PointMLPLayer(point_channels, point_channels))
        self.stem = _cbr(SubMConv3d(point_channels, c[0], 3, bias=False), c[0])
        self.down = nn.ModuleList([_cbr(SparseConv3d(c[i], c[i + 1], 2, 2, bias=False), c[i + 1]) for i in range(3)])
        self.enc = nn.ModuleList([_cbr(SubMConv3d(c[i + 1], c[i + 1], 3, bias=False), c[i + 1]) for i in range(3)])
        self.up = nn.ModuleList([_cbr(SparseInverseConv3d(c[i + 1], c[i], 2, 2, bias=False), c[i])
                                 for i in (2, 1, 0)])
        self.dec = nn.ModuleList([_cbr(SubMConv3d(2 * c[i], c[i], 3, bias=False), c[i]) for i in (2, 1, 0)])
        hidden = max(c[0], point_channels)
        # the head's first layer on [voxel features, point features], split in two: the voxel half
        # runs on the V voxels and is gathered to the points, not on N gathered rows
        self.head_voxel = nn.Linear(c[0], hidden, bias=False)
        self.head_point = nn.Linear(point_channels, hidden, bias=False)
        self.head_norm = RowBatchNorm(hidden)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward_ragged(self, xyz: torch.Tensor, feats: torch.Tensor,
                       offsets: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for every point of the ragged batch (see docs/conventions.md)."""
        from pcseg.ops import voxel_reduce, voxelize_batched

        check_inputs(self, xyz, feats)
        coords, inverse, _ = voxelize_batched(xyz, offsets, self.voxel_size)
        centre = (coords[:, 1:].to(xyz.dtype) + 0.5) * self.voxel_size
        local = (xyz - centre.index_select(0, inverse)) / self.voxel_size  # in [-0.5, 0.5)
        p = self.point_encoder(torch.cat([feats, local.to(feats.dtype)], 1))
        x = self.stem(SparseTensor(voxel_reduce(p, inverse, coords.shape[0], mode="max"), coords))
        skips = [x]
        for down, enc in zip(self.down, self.enc):
            x = enc(down(x))
            skips.append(x)
        for j, (up, dec) in enumerate(zip(self.up, self.dec)):
            x = dec(sparse_cat([up(x), skips[2 - j]]))
        h = voxel_to_point(self.head_voxel(x.feats), inverse) + self.head_point(p)
        return self.classifier(torch.relu(self.head_norm(h)))

    def forward(self, xyz, feats, offsets):
        return self.forward_ragged(xyz, feats, offsets)
