"""Shared stand-ins for the model tests: random ragged batches and a short fitting run."""

from __future__ import annotations

import torch


def ragged_clouds(sizes=(300, 200), seed=0, extent=2.0, low=0.0):
    """(xyz (N,3), feats (N,4) = xyz + a random channel, offsets (B,)) of uniform random clouds in
    the cube [low, low + extent)^3, one per entry of ``sizes``."""
    g = torch.Generator().manual_seed(seed)
    xyz = torch.cat([torch.rand(n, 3, generator=g) * extent + low for n in sizes])
    feats = torch.cat([xyz, torch.rand(xyz.shape[0], 1, generator=g)], 1)
    return xyz, feats, torch.tensor(sizes).cumsum(0)


def fit(model, xyz, feats, offsets, labels, steps: int, lr: float):
    """Train ``model`` with Adam on one batch; returns (losses per step, final eval accuracy)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model.forward_ragged(xyz, feats, offsets), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        acc = (model.forward_ragged(xyz, feats, offsets).argmax(1) == labels).float().mean()
    return losses, float(acc)
