"""Row-wise layers on per-point (N, C) features whose batch norms fold away in eval mode."""

from __future__ import annotations

import torch
from torch import nn


class RowBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the rows of an (N, C) tensor; in eval mode one fused ``addcmul`` with the
    running statistics (``batch_norm`` on an (N, C) input walks it channel by channel)."""

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        if self.training or not self.track_running_stats:
            return super().forward(f)
        scale, shift = self.folded()
        return torch.addcmul(shift.to(f.dtype), f, scale.to(f.dtype))

    def folded(self):
        """(scale (C,), shift (C,)) with ``bn(f) == f * scale + shift`` in eval mode."""
        scale = torch.rsqrt(self.running_var + self.eps)
        if self.affine:
            scale = scale * self.weight
        shift = -self.running_mean * scale
        return scale, (shift + self.bias if self.affine else shift)


class PointMLPLayer(nn.Module):
    """Linear (no bias) -> BatchNorm -> ReLU on (N, C_in) rows; in eval mode the norm is folded
    into the weights, so the layer is one ``addmm`` and one ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.linear = nn.Linear(cin, cout, bias=False)
        self.norm = RowBatchNorm(cout)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        if self.training:
            return torch.relu(self.norm(self.linear(f)))
        scale, shift = self.norm.folded()
        w = (self.linear.weight * scale[:, None]).to(f.dtype)
        return torch.relu(torch.addmm(shift.to(f.dtype), f, w.t()))
