"""The input check every model's ``forward_ragged`` starts with (the model protocol's shapes)."""

from __future__ import annotations

import torch

from pcseg.errors import PcsegValueError


def check_inputs(model, xyz: torch.Tensor, feats: torch.Tensor) -> None:
    """PcsegValueError, naming the model's class, unless xyz is (N, 3), feats is
    (N, model.in_channels) and N > 0."""
    name = type(model).__name__
    if xyz.dim() != 2 or xyz.shape[1] != 3:
        raise PcsegValueError(f"{name}: xyz must be (N, 3), got {tuple(xyz.shape)}")
    if feats.dim() != 2 or feats.shape[0] != xyz.shape[0] or feats.shape[1] != model.in_channels:
        raise PcsegValueError(f"{name}: feats must be ({xyz.shape[0]}, {model.in_channels}) (in_channels), "
                              f"got {tuple(feats.shape)}")
    if xyz.shape[0] == 0:
        raise PcsegValueError(f"{name}: empty input (0 points)")
