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


def assert_every_parameter_gets_a_gradient(model, xyz, feats, offsets, num_classes: int):
    """Finite (N, num_classes) logits, and a finite gradient on every parameter."""
    logits = model.forward_ragged(xyz, feats, offsets)
    assert logits.shape == (len(xyz), num_classes) and torch.isfinite(logits).all()
    logits.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def three_cloud_logits(model, xyz, feats):
    """Logits of three clouds of 300, 250 and 200 points: (batched, the middle cloud alone, the
    batch in reversed cloud order); asserts that a cloud's logits depend neither on its
    neighbours in the batch nor on its place there."""
    model.eval()
    with torch.no_grad():
        batched = model.forward_ragged(xyz, feats, torch.tensor([300, 550, 750]))
        alone = model.forward_ragged(xyz[300:550], feats[300:550], torch.tensor([250]))
        perm = torch.cat([torch.arange(550, 750), torch.arange(300, 550), torch.arange(300)])
        swapped = model.forward_ragged(xyz[perm], feats[perm], torch.tensor([200, 450, 750]))
    torch.testing.assert_close(alone, batched[300:550], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(swapped[200:450], batched[300:550], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(swapped[450:], batched[:300], rtol=1e-4, atol=1e-5)
    return batched, alone, swapped
