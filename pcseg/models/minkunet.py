"""MinkUNet: a sparse-convolution U-Net on voxels (Choy et al. 2019), built on ``pcseg.sparse``.

Points are voxelized (mean of the features of the points in each voxel), run through a
residual U-Net of four stride-2 stages down and four up, and the per-voxel logits are copied
back to every input point, so points that shared a voxel get the same logits.
"""

from __future__ import annotations

import torch
from torch import nn

from pcseg.errors import PcsegValueError
from pcseg.models.inputs import check_inputs
from pcseg.sparse import (
    SparseBatchNorm,
    SparseConv3d,
    SparseInverseConv3d,
    SparseReLU,
    SparseTensor,
    SubMConv3d,
    sparse_cat,
    voxel_to_point,
)

# Residual blocks per stage: 4 encoder stages then 4 decoder stages (MinkowskiEngine's sizes).
LAYER_PRESETS = {
    "18": (2, 2, 2, 2, 2, 2, 2, 2),
    "34": (2, 3, 4, 6, 2, 2, 2, 2),
}
# Channels: stem, 4 encoder stages, 4 decoder stages (before the width multiplier).
BASE_CHANNELS = (32, 32, 64, 128, 256, 256, 128, 96, 96)


def _conv_bn_relu(cin, cout, conv):
    return nn.Sequential(conv, SparseBatchNorm(cout), SparseReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3x3x3 submanifold convs with BatchNorm, plus a 1x1x1 projection when widths differ."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.main = nn.Sequential(
            SubMConv3d(cin, cout, 3, bias=False), SparseBatchNorm(cout), SparseReLU(inplace=True),
            SubMConv3d(cout, cout, 3, bias=False), SparseBatchNorm(cout),
        )
        self.shortcut = (nn.Identity() if cin == cout else
                         nn.Sequential(SubMConv3d(cin, cout, 1, bias=False), SparseBatchNorm(cout)))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: SparseTensor) -> SparseTensor:
        out = self.main(x)
        return out.replace_feats(self.relu(out.feats + self.shortcut(x).feats))


def _stage(cin, cout, blocks):
    return nn.Sequential(ResidualBlock(cin, cout), *[ResidualBlock(cout, cout) for _ in range(blocks - 1)])


class MinkUNet(nn.Module):
    """Sparse residual U-Net segmenting ragged point batches.

    Args:
        num_classes: logits per point.
        in_channels: per-point feature width (e.g. 4 for xyz + intensity).
        voxel_size: voxel edge in metres (the units of ``xyz``).
        layers: ``"18"``, ``"34"`` or 8 ints: residual blocks per encoder/decoder stage.
        width: channel multiplier (0.5 halves every layer; channels are at least 8).

    ``forward_ragged(xyz (N,3) float32, feats (N,in_channels) float32, offsets (B,) int64)``
    returns logits (N, num_classes) for every input point.
    """

    def __init__(self, num_classes: int, in_channels: int, voxel_size: float = 0.05,
                 layers="18", width: float = 1.0):
        super().__init__()
        if isinstance(layers, str):
            if layers not in LAYER_PRESETS:
                raise PcsegValueError(f"{type(self).__name__}: layers must be one of {sorted(LAYER_PRESETS)} "
                                      f"or 8 ints, got {layers!r}")
            blocks = LAYER_PRESETS[layers]
        else:
            blocks = tuple(int(b) for b in layers)
            if len(blocks) != 8 or min(blocks) < 1:
                raise PcsegValueError(f"{type(self).__name__}: layers needs 8 positive ints, got {layers!r}")
        if not num_classes >= 1 or not in_channels >= 1:
            raise PcsegValueError(f"{type(self).__name__}: num_classes and in_channels must be >= 1, got "
                                  f"{num_classes} and {in_channels}")
        if not voxel_size > 0:
            raise PcsegValueError(f"{type(self).__name__}: voxel_size must be > 0, got {voxel_size}")
        if not width > 0:
            raise PcsegValueError(f"{type(self).__name__}: width must be > 0, got {width}")
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.voxel_size = float(voxel_size)
        self.layers = blocks
        self.width = float(width)
        cs = [max(8, int(round(c * width))) for c in BASE_CHANNELS]

        self.stem = nn.Sequential(
            _conv_bn_relu(in_channels, cs[0], SubMConv3d(in_channels, cs[0], 3, bias=False)),
            _conv_bn_relu(cs[0], cs[0], SubMConv3d(cs[0], cs[0], 3, bias=False)),
        )
        self.down = nn.ModuleList()
        self.encoder = nn.ModuleList()
        for i in range(4):
            self.down.append(_conv_bn_relu(cs[i], cs[i], SparseConv3d(cs[i], cs[i], 2, 2, bias=False)))
            self.encoder.append(_stage(cs[i], cs[i + 1], blocks[i]))
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        prev = cs[4]
        skips = [cs[3], cs[2], cs[1], cs[0]]  # encoder outputs at strides 8, 4, 2, 1
        for j in range(4):
            cout = cs[5 + j]
            self.up.append(_conv_bn_relu(prev, cout, SparseInverseConv3d(prev, cout, 2, 2, bias=False)))
            self.decoder.append(_stage(cout + skips[j], cout, blocks[4 + j]))
            prev = cout
        self.feature_channels = prev
        self.classifier = nn.Linear(prev, num_classes)

    def features_sparse(self, x: SparseTensor) -> SparseTensor:
        """Last decoder features (a stride-1 SparseTensor, ``feature_channels`` wide) of a stride-1
        voxel SparseTensor: what the classifier (and an instance head) reads."""
        x = self.stem(x)
        skips = [x]
        for down, enc in zip(self.down, self.encoder):
            x = enc(down(x))
            skips.append(x)
        for j, (up, dec) in enumerate(zip(self.up, self.decoder)):
            x = dec(sparse_cat([up(x), skips[3 - j]]))
        return x

    def forward_sparse(self, x: SparseTensor) -> SparseTensor:
        """Per-voxel logits (a stride-1 SparseTensor) of a stride-1 voxel SparseTensor."""
        x = self.features_sparse(x)
        return x.replace_feats(self.classifier(x.feats))

    def voxelize(self, xyz: torch.Tensor, feats: torch.Tensor, offsets: torch.Tensor):
        """(SparseTensor of mean voxel features, inverse (N,) int64 point -> voxel index)."""
        from pcseg.ops import voxel_reduce, voxelize_batched

        coords, inverse, _counts = voxelize_batched(xyz, offsets, self.voxel_size)
        vfeats = voxel_reduce(feats, inverse, coords.shape[0], mode="mean")
        return SparseTensor(vfeats, coords), inverse

    def forward_voxels(self, xyz: torch.Tensor, feats: torch.Tensor,
                       offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (V, num_classes) per voxel, inverse (N,) int64 point -> voxel row).

        ``forward_ragged`` is ``logits[inverse]``; inference takes softmax / argmax of the V voxel
        rows before that copy to the N points (points that share a voxel share its logits).
        """
        check_inputs(self, xyz, feats)
        x, inverse = self.voxelize(xyz, feats, offsets)
        return self.forward_sparse(x).feats, inverse

    def forward_ragged(self, xyz: torch.Tensor, feats: torch.Tensor,
                       offsets: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for every point of the ragged batch (see docs/conventions.md)."""
        logits, inverse = self.forward_voxels(xyz, feats, offsets)
        return voxel_to_point(logits, inverse)

    def forward(self, xyz, feats, offsets):
        return self.forward_ragged(xyz, feats, offsets)


def MinkUNet18(num_classes: int, in_channels: int, voxel_size: float = 0.05,
               width: float = 1.0) -> MinkUNet:
    """MinkUNet with (2, 2, 2, 2, 2, 2, 2, 2) residual blocks per stage."""
    return MinkUNet(num_classes, in_channels, voxel_size, layers="18", width=width)


def MinkUNet34(num_classes: int, in_channels: int, voxel_size: float = 0.05,
               width: float = 1.0) -> MinkUNet:
    """MinkUNet with (2, 3, 4, 6, 2, 2, 2, 2) residual blocks per stage."""
    return MinkUNet(num_classes, in_channels, voxel_size, layers="34", width=width)
