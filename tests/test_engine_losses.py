"""Losses against independent references: Lovasz-softmax equals the Jaccard loss on hard
predictions; weighted CE equals torch's weighted mean; class weights follow frequencies."""

import numpy as np
import torch
import torch.nn.functional as F

from pcseg.engine.losses import (IGNORE, frequency_class_weights, lovasz_softmax, lovasz_sum, masked_targets,
                                 weighted_ce_sum)


def _jaccard_loss(pred, target, num_classes):
    losses = []
    for c in range(num_classes):
        if not (target == c).any():
            continue
        inter = np.sum((pred == c) & (target == c))
        union = np.sum((pred == c) | (target == c))
        losses.append(1.0 - inter / union)
    return float(np.mean(losses))


def test_lovasz_equals_jaccard_loss_on_one_hot_predictions():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n, c = int(rng.integers(5, 60)), int(rng.integers(2, 6))
        target = rng.integers(0, c, n)
        pred = np.where(rng.random(n) < 0.6, target, rng.integers(0, c, n))
        probs = F.one_hot(torch.from_numpy(pred), c).double()
        got = lovasz_softmax(probs, torch.from_numpy(target)).item()
        assert abs(got - _jaccard_loss(pred, target, c)) < 1e-9


def test_lovasz_skips_ignored_and_is_zero_for_perfect():
    target = torch.tensor([0, 1, 1, IGNORE])
    probs = F.one_hot(torch.tensor([0, 1, 1, 0]), 2).float()
    assert lovasz_softmax(probs, target).item() == 0.0
    logits = torch.randn(10, 3, requires_grad=True)
    total, count = lovasz_sum(logits, torch.randint(0, 3, (10,)), torch.tensor([4, 10]))
    total.backward()
    assert count.item() == 2 and logits.grad is not None


def test_weighted_ce_matches_torch_mean():
    logits = torch.randn(50, 4)
    target = torch.randint(0, 4, (50,))
    target[:5] = IGNORE
    weights = torch.tensor([0.5, 1.0, 2.0, 0.0])
    total, norm = weighted_ce_sum(logits, target, weights)
    expected = F.cross_entropy(logits, target, weight=weights, ignore_index=IGNORE)
    assert torch.allclose(total / norm, expected, atol=1e-6)


def test_masked_targets_and_frequency_weights():
    labels = torch.tensor([0, 1, 2, -1, 5])
    assert masked_targets(labels, [0], 3).tolist() == [IGNORE, 1, 2, IGNORE, IGNORE]
    w = frequency_class_weights([100, 400, 100, 0], ignore_index=[0])
    # classes 1 and 2: frequencies 0.8 / 0.2 -> 1/sqrt ratio 2, mean 1
    assert w[0] == 0 and w[3] == 1
    assert abs(w[2] / w[1] - 2.0) < 1e-6 and abs((w[1] + w[2]) / 2 - 1.0) < 1e-6
