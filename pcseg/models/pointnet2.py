"""PointNet++ semantic segmentation networks: :class:`PointNet2SSG` and :class:`PointNet2MSG`.

Four set-abstraction levels (furthest-point sampling, ball query, shared MLP, max pool) shrink
the cloud by ``stride`` each, four feature-propagation levels carry features back to every
input point (three-NN inverse-distance interpolation + skip connections), and a pointwise head
gives per-point logits. Sizes follow the PointNet++ paper's S3DIS/ScanNet segmentation networks
(4,096-point blocks -> 1,024 / 256 / 64 / 16 centroids); the ``"lidar"`` preset keeps the
network and scales the radii for outdoor scans in metres (meant for ``[intensity]`` features,
``in_channels=1``).
"""

from __future__ import annotations

import torch
from torch import nn

from pcseg.errors import PcsegValueError
from pcseg.models.pointnet2_modules import FeaturePropagation, PointwiseMLP, SetAbstraction

# Shared by both variants: stride per level (4,096 -> 1,024 -> 256 -> 64 -> 16) and the
# feature-propagation MLPs, listed from the coarsest level to the finest.
_STRIDES = (4, 4, 4, 4)
_FP_MLPS = ((256, 256), (256, 256), (256, 128), (128, 128, 128))

# radii in metres; one tuple per level, one entry per grouping scale
_PRESETS = {
    "ssg": {
        "indoor": {"radii": ((0.1,), (0.2,), (0.4,), (0.8,)), "nsamples": ((32,),) * 4},
        "lidar": {"radii": ((0.8,), (1.6,), (3.2,), (6.4,)), "nsamples": ((32,),) * 4},
        "mlps": (((32, 32, 64),), ((64, 64, 128),), ((128, 128, 256),), ((256, 256, 512),)),
    },
    "msg": {
        "indoor": {"radii": ((0.05, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 0.8)),
                   "nsamples": ((16, 32),) * 4},
        "lidar": {"radii": ((0.4, 0.8), (0.8, 1.6), (1.6, 3.2), (3.2, 6.4)),
                  "nsamples": ((16, 32),) * 4},
        "mlps": (((16, 16, 32), (32, 32, 64)), ((64, 64, 128), (64, 96, 128)),
                 ((128, 196, 256), (128, 196, 256)), ((256, 256, 512), (256, 384, 512))),
    },
}
PRESET_NAMES = ("indoor", "lidar")


def _scaled(channels, width: float):
    return tuple(max(4, int(round(c * width))) for c in channels)


class _PointNet2(nn.Module):
    """Shared body of the SSG and MSG networks; see the subclasses for the arguments."""

    variant = ""

    def __init__(self, num_classes: int, in_channels: int = 0, preset: str = "indoor",
                 width: float = 1.0, radii=None, nsamples=None, strides=None,
                 dropout: float = 0.5, bn_momentum: float = 0.5):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise PcsegValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if not isinstance(in_channels, int) or in_channels < 0:
            raise PcsegValueError(f"in_channels must be an int >= 0, got {in_channels!r}")
        if preset not in PRESET_NAMES:
            raise PcsegValueError(f"preset must be one of {PRESET_NAMES}, got {preset!r}")
        if not width > 0:
            raise PcsegValueError(f"width must be > 0, got {width!r}")
        table = _PRESETS[self.variant]
        radii = tuple(tuple(r) for r in (radii or table[preset]["radii"]))
        nsamples = tuple(tuple(k) for k in (nsamples or table[preset]["nsamples"]))
        strides = tuple(strides or _STRIDES)
        mlps = table["mlps"]
        if not (len(radii) == len(nsamples) == len(strides) == len(mlps)):
            raise PcsegValueError(f"radii, nsamples and strides need {len(mlps)} levels each; got "
                                  f"{len(radii)}, {len(nsamples)}, {len(strides)}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        # the constructor's arguments, so a checkpoint can rebuild the same network
        self.config = {"num_classes": num_classes, "in_channels": in_channels, "preset": preset,
                       "width": width, "radii": radii, "nsamples": nsamples, "strides": strides,
                       "dropout": dropout, "bn_momentum": bn_momentum}

        self.encoder = nn.ModuleList()
        level_channels = [in_channels]
        for stride, level_radii, level_k, level_mlps in zip(strides, radii, nsamples, mlps):
            if len(level_radii) != len(level_mlps) or len(level_k) != len(level_mlps):
                raise PcsegValueError(f"the {self.variant.upper()} network needs "
                                      f"{len(level_mlps)} radii and nsamples per level, got "
                                      f"radii={level_radii}, nsamples={level_k}")
            sa = SetAbstraction(level_channels[-1], stride, level_radii, level_k,
                                [_scaled(m, width) for m in level_mlps])
            self.encoder.append(sa)
            level_channels.append(sa.out_channels)

        self.decoder = nn.ModuleList()
        coarse = level_channels[-1]
        for skip, mlp in zip(reversed(level_channels[:-1]), _FP_MLPS):
            fp = FeaturePropagation(coarse, skip, _scaled(mlp, width))
            self.decoder.append(fp)
            coarse = fp.out_channels

        self.head = PointwiseMLP(coarse, _scaled((128,), width))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.head.out_channels, num_classes)
        if not 0 < bn_momentum <= 1:
            raise PcsegValueError(f"bn_momentum must be in (0, 1], got {bn_momentum!r}")
        for module in self.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.momentum = bn_momentum


    # ---------------------------------------------------------------- public entry points
    def forward(self, xyz: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Dense batch of equal-size clouds (e.g. 4,096-point blocks).

        xyz (B,N,3) float32 in metres; features (B,N,in_channels) float32, or None when
        ``in_channels == 0`` -> logits (B,N,num_classes) float32.
        """
        if xyz.dim() != 3 or xyz.shape[-1] != 3:
            raise PcsegValueError(f"xyz must have shape (B, N, 3), got {tuple(xyz.shape)}")
        b, n, _ = xyz.shape
        if features is not None:
            if features.dim() != 3 or features.shape[:2] != (b, n):
                raise PcsegValueError(f"features must have shape (B, N, C) = ({b}, {n}, C), "
                                      f"got {tuple(features.shape)}")
            features = features.reshape(b * n, -1)
        offsets = torch.arange(1, b + 1, device=xyz.device, dtype=torch.int64) * n
        logits = self.forward_ragged(xyz.reshape(b * n, 3), features, offsets)
        return logits.reshape(b, n, self.num_classes)

    def forward_ragged(self, xyz: torch.Tensor, feats: torch.Tensor | None,
                       offsets: torch.Tensor) -> torch.Tensor:
        """Ragged batch of clouds of any sizes (the project-wide model protocol).

        xyz (N,3) float32 in metres; feats (N,in_channels) float32 (None allowed when
        ``in_channels == 0``); offsets (B,) int64 cumulative counts with ``offsets[-1] == N``
        -> logits (N,num_classes), one row per input point. Each cloud is sampled and grouped
        on its own; empty clouds are allowed and contribute no rows.
        """
        xyz, feats, offsets = self._check_ragged(xyz, feats, offsets)
        if xyz.shape[0] == 0:
            return xyz.new_zeros((0, self.num_classes))
        counts = torch.diff(offsets, prepend=offsets.new_zeros(1))
        if bool((counts == 0).any()):
            offsets = offsets[counts > 0]  # an empty cloud owns no points, so drop its entry

        levels = [(xyz, feats, offsets)]
        for sa in self.encoder:
            levels.append(sa(*levels[-1]))
        coarse_xyz, coarse, coarse_offsets = levels[-1]
        last = len(self.decoder) - 1
        for i, (fp, (fine_xyz, skip, fine_offsets)) in enumerate(zip(self.decoder, reversed(levels[:-1]))):
            # the last level runs the head in the same row chunks (no-grad inference)
            tail = (self._apply_head, self.num_classes) if i == last else None
            coarse = fp(fine_xyz, fine_offsets, skip, coarse_xyz, coarse_offsets, coarse, tail=tail)
            coarse_xyz, coarse_offsets = fine_xyz, fine_offsets
        return coarse

    def _apply_head(self, rows: torch.Tensor) -> torch.Tensor:
        """(P, 128 * width) last decoder features -> (P, num_classes) logits."""
        return self.classifier(self.dropout(self.head(rows)))

    # ---------------------------------------------------------------- input checks
    def _check_ragged(self, xyz, feats, offsets):
        if not torch.is_tensor(xyz) or xyz.dim() != 2 or xyz.shape[1] != 3:
            raise PcsegValueError(f"xyz must be a tensor of shape (N, 3), got "
                                  f"{tuple(xyz.shape) if torch.is_tensor(xyz) else type(xyz)}")
        if not xyz.is_floating_point():
            raise PcsegValueError(f"xyz must be float32, got {xyz.dtype}")
        n = xyz.shape[0]
        if feats is None or (torch.is_tensor(feats) and feats.numel() == 0 and self.in_channels == 0):
            if self.in_channels:
                raise PcsegValueError(f"feats is None but the model has in_channels="
                                      f"{self.in_channels}")
            feats = None
        elif feats.dim() != 2 or feats.shape != (n, self.in_channels):
            raise PcsegValueError(f"feats must have shape (N, in_channels) = ({n}, "
                                  f"{self.in_channels}), got {tuple(feats.shape)}")
        if not torch.is_tensor(offsets) or offsets.dim() != 1 or offsets.numel() == 0:
            raise PcsegValueError("offsets must be a 1-D int64 tensor of cumulative counts (B,)")
        if offsets.dtype != torch.int64:
            raise PcsegValueError(f"offsets must be int64, got {offsets.dtype}")
        offsets = offsets.to(xyz.device)
        if int(offsets[-1]) != n or bool((torch.diff(offsets, prepend=offsets.new_zeros(1)) < 0).any()):
            raise PcsegValueError(f"offsets must be non-decreasing cumulative counts ending at N={n}, "
                                  f"got {offsets.tolist()[:8]}")
        if not bool(torch.isfinite(xyz).all()):
            raise PcsegValueError("xyz contains NaN or infinite coordinates")
        dtype = self.classifier.weight.dtype
        xyz = xyz.to(dtype).contiguous()
        feats = feats.to(dtype).contiguous() if feats is not None else None
        return xyz, feats, offsets


class PointNet2SSG(_PointNet2):
    """PointNet++ with single-scale grouping (one radius per level).

    PointNet2SSG(num_classes, in_channels=0, preset="indoor" | "lidar", width=1.0,
    radii=None, nsamples=None, strides=None, dropout=0.5, bn_momentum=0.5)

    - ``in_channels``: per-point features beyond xyz (0 for xyz only, 1 for LiDAR intensity,
      3 for RGB, ...); xyz itself always enters as coordinates relative to each centroid,
      divided by the ball radius.
    - ``preset``: ``"indoor"`` = the paper's S3DIS/ScanNet network, radii 0.1/0.2/0.4/0.8 m,
      32 neighbours, for 4,096-point blocks; ``"lidar"`` = radii 0.8/1.6/3.2/6.4 m for
      outdoor scans (a few thousand to ~100k points, ``in_channels=1`` for intensity).
    - ``width``: multiplies every hidden width (0.25 gives a small, quick network).
    - ``radii``/``nsamples``: per level tuples of one value, overriding the preset;
      ``strides``: per level downsampling factor (default 4, 4, 4, 4).
    - ``bn_momentum``: batch-norm running-statistics momentum. 0.5 is the PointNet++ reference
      code's initial value; every batch norm here sees M x k rows (millions per batch), so batch
      statistics are steady and a high momentum lets eval mode follow the weights early in
      training (with PyTorch's 0.1 an eval-mode net lags its training-mode self for ~50 steps).

    Input/outputs: see :meth:`forward` (dense) and :meth:`forward_ragged` (offsets).
    In eval mode the output is deterministic (furthest-point sampling starts at each cloud's
    first point; ball query and three-NN break ties by index).
    """

    variant = "ssg"


class PointNet2MSG(_PointNet2):
    """PointNet++ with multi-scale grouping: two radii per level, outputs concatenated.

    Same arguments as :class:`PointNet2SSG`; ``"indoor"`` radii are 0.05/0.1, 0.1/0.2,
    0.2/0.4, 0.4/0.8 m with 16/32 neighbours (the paper's MSG segmentation network),
    ``"lidar"`` radii 0.4/0.8 ... 3.2/6.4 m; ``radii``/``nsamples`` overrides take two values
    per level.
    """

    variant = "msg"
