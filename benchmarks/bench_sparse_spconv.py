"""spconv 2.3.8 mirrors of pcseg.sparse layers and of a pcseg MinkUNet, with the same weights.

Used by bench_sparse.py (speed peer) and tests (results peer). spconv wants non-negative
coordinates: they are shifted by a multiple of 16 (so every stride up to 16 stays aligned) and
spconv weights are ours permuted from (k, k, k, C_in, C_out) to (C_out, k, k, k, C_in).
"""

from __future__ import annotations

import torch
from torch import nn

ALIGN = 16


def coord_shift(coords: torch.Tensor) -> torch.Tensor:
    """(3,) int32 shift, a multiple of 16, making coords[:, 1:] - shift non-negative."""
    return torch.div(coords[:, 1:].amin(0), ALIGN, rounding_mode="floor") * ALIGN


def spconv_tensor(spconv, feats: torch.Tensor, coords: torch.Tensor, batch_size: int = 1):
    shift = coord_shift(coords)
    local = torch.cat([coords[:, :1], coords[:, 1:] - shift], 1).contiguous()
    shape = (local[:, 1:].amax(0) + 1 + ALIGN).tolist()
    return spconv.SparseConvTensor(feats, local, shape, batch_size)


def _conv(spconv, ours, key):
    from pcseg.sparse import SparseConv3d, SparseInverseConv3d

    bias = ours.bias is not None
    if isinstance(ours, SparseInverseConv3d):
        theirs = spconv.SparseInverseConv3d(ours.in_channels, ours.out_channels, ours.kernel_size,
                                            indice_key=key, bias=bias)
    elif isinstance(ours, SparseConv3d):
        theirs = spconv.SparseConv3d(ours.in_channels, ours.out_channels, ours.kernel_size,
                                     ours.stride, indice_key=key, bias=bias)
    else:
        theirs = spconv.SubMConv3d(ours.in_channels, ours.out_channels, ours.kernel_size,
                                   dilation=ours.dilation, indice_key=key, bias=bias)
    with torch.no_grad():
        if ours.kernel_size == 1 and not isinstance(ours, SparseConv3d):
            # spconv 2.3.8 runs a 1x1x1 conv as features @ weight.view(C_in, C_out), whatever
            # its declared (C_out, 1, 1, 1, C_in) layout: hand it that memory order
            theirs.weight.copy_(ours.weight.reshape(-1).view(theirs.weight.shape))
        else:
            theirs.weight.copy_(ours.weight.permute(4, 0, 1, 2, 3))
        if bias:
            theirs.bias.copy_(ours.bias)
    return theirs.to(ours.weight.device)


def _bn(ours):
    bn = nn.BatchNorm1d(ours.num_features, eps=ours.eps, momentum=ours.momentum)
    bn.load_state_dict(ours.state_dict())
    return bn.to(ours.weight.device)


def _conv_bn_relu(spconv, seq, key):
    return spconv.SparseSequential(_conv(spconv, seq[0], key), _bn(seq[1]), nn.ReLU(inplace=True))


class _Block(nn.Module):
    def __init__(self, spconv, ours, key):
        super().__init__()
        m = ours.main
        self.main = spconv.SparseSequential(_conv(spconv, m[0], key), _bn(m[1]), nn.ReLU(inplace=True),
                                            _conv(spconv, m[3], key), _bn(m[4]))
        self.short = None
        if not isinstance(ours.shortcut, nn.Identity):
            self.short = spconv.SparseSequential(_conv(spconv, ours.shortcut[0], key + "_1x1"),
                                                 _bn(ours.shortcut[1]))

    def forward(self, x):
        out = self.main(x)
        short = x.features if self.short is None else self.short(x).features
        return out.replace_feature(torch.relu(out.features + short))


class SpconvMinkUNet(nn.Module):
    """spconv copy of a pcseg MinkUNet (eval mode); ``(points (N,4), offsets) -> logits (N, K)``."""

    def __init__(self, spconv, model):
        super().__init__()
        self.spconv = spconv
        self.model = model  # for voxelization settings
        self.stem = spconv.SparseSequential(*[_conv_bn_relu(spconv, s, "s1") for s in model.stem])
        self.down = nn.ModuleList(_conv_bn_relu(spconv, d, f"down{i}") for i, d in enumerate(model.down))
        self.encoder = nn.ModuleList(
            nn.Sequential(*[_Block(spconv, b, f"s{2 ** (i + 1)}") for b in stage])
            for i, stage in enumerate(model.encoder))
        self.up = nn.ModuleList()
        for j, u in enumerate(model.up):
            conv = _conv(spconv, u[0], f"down{3 - j}")
            self.up.append(spconv.SparseSequential(conv, _bn(u[1]), nn.ReLU(inplace=True)))
        self.decoder = nn.ModuleList(
            nn.Sequential(*[_Block(spconv, b, f"s{2 ** (3 - j)}") for b in stage])
            for j, stage in enumerate(model.decoder))
        self.classifier = model.classifier
        self.eval()

    def forward(self, points, offsets):
        from pcseg.ops import voxel_reduce, voxelize_batched

        coords, inverse, _ = voxelize_batched(points[:, :3], offsets, self.model.voxel_size)
        feats = voxel_reduce(points, inverse, coords.shape[0], mode="mean")
        x = self.stem(spconv_tensor(self.spconv, feats, coords, offsets.numel()))
        skips = [x]
        for down, enc in zip(self.down, self.encoder):
            x = enc(down(x))
            skips.append(x)
        for j, (up, dec) in enumerate(zip(self.up, self.decoder)):
            y = up(x)
            x = dec(y.replace_feature(torch.cat([y.features, skips[3 - j].features], 1)))
        return self.classifier(x.features)[inverse]


def spconv_minkunet(spconv, model):
    return SpconvMinkUNet(spconv, model)
