"""Segmentation losses: class-weighted cross-entropy and Lovasz-softmax; the L1 instance-offset
loss of panoptic models.

Both are returned as *sums* with their normalisers (total weight, scan count) so the trainer can
normalise by the global batch: under DDP every process divides by the totals all-reduced over
processes, which makes two processes with b scans each compute exactly the gradient of one
process with 2b scans.

The loss protocol (what ``train.loss`` names, see :data:`pcseg.engine.registry.LOSSES`): a
class whose constructor takes its config arguments plus any of ``num_classes``,
``ignore_index``, ``train_set``, ``device`` it names, and whose instances are called as
``loss(logits (N, C) float32, targets (N,) int64 with IGNORE for skipped points, offsets (B,)
int64) -> (sum, normaliser)``; the trainer adds ``weight * sum / normaliser`` over the terms,
normalisers summed over processes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IGNORE = -100  # target value skipped by both losses


def frequency_class_weights(counts, ignore_index=()) -> torch.Tensor:
    """float32 (C,) weights ~ 1/sqrt(frequency), mean 1 over classes with points.

    ``counts`` int (C,) label counts; ignored classes and classes without points get weight 0
    and 1 respectively (the latter never occur in targets drawn from the same data).
    """
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.ones_like(counts)
    seen = counts > 0
    for c in ignore_index:
        seen[c] = False
    if seen.any():
        freq = counts[seen] / counts[seen].sum()
        w = 1.0 / np.sqrt(freq)
        weights[seen] = w / w.mean()
    for c in ignore_index:
        weights[c] = 0.0
    return torch.tensor(weights, dtype=torch.float32)


def masked_targets(labels: torch.Tensor, ignore_index, num_classes: int) -> torch.Tensor:
    """int64 (N,) labels with ignored train ids and negatives replaced by :data:`IGNORE`."""
    out = labels.clone()
    bad = (out < 0) | (out >= num_classes)
    for c in ignore_index:
        bad |= out == c
    out[bad] = IGNORE
    return out


def weighted_ce_sum(logits, targets, weights=None):
    """(sum_i w[t_i] * CE_i, sum_i w[t_i]) over points whose target is not :data:`IGNORE`.

    logits float (N, C), targets int64 (N,), weights float (C,) or None (all ones).
    """
    valid = targets != IGNORE
    if not valid.any():
        zero = logits.sum() * 0.0
        return zero, torch.zeros((), device=logits.device)
    logits, targets = logits[valid].float(), targets[valid]
    per_point = F.cross_entropy(logits, targets, reduction="none")
    w = weights[targets] if weights is not None else torch.ones_like(per_point)
    return (w * per_point).sum(), w.sum().detach()


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss w.r.t. sorted errors.

    ``gt_sorted`` float (P, K): ground-truth indicators sorted by decreasing error, per column.
    """
    gts = gt_sorted.sum(0, keepdim=True)
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if len(gt_sorted) > 1:
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]], dim=0)
    return jaccard


def lovasz_softmax(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Lovasz-softmax loss of one cloud (Berman et al. 2018), averaged over present classes.

    probs float (P, C) softmax probabilities, targets int64 (P,) with :data:`IGNORE` skipped.
    Returns a scalar; 0 (with a graph) when no point is labelled.
    """
    valid = targets != IGNORE
    probs, targets = probs[valid], targets[valid]
    if len(targets) == 0:
        return probs.sum() * 0.0
    num_classes = probs.shape[1]
    present = torch.bincount(targets, minlength=num_classes) > 0
    fg = F.one_hot(targets, num_classes).to(probs.dtype)[:, present]
    errors = (fg - probs[:, present]).abs()
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    fg_sorted = torch.gather(fg, 0, perm)
    per_class = (errors_sorted * lovasz_grad(fg_sorted)).sum(0)
    return per_class.mean()


def lovasz_sum(logits, targets, offsets):
    """(sum over clouds of their Lovasz-softmax loss, number of clouds) for a ragged batch."""
    probs = torch.softmax(logits.float(), dim=1)
    total = logits.sum() * 0.0
    start = 0
    for end in offsets.tolist():
        total = total + lovasz_softmax(probs[start:end], targets[start:end])
        start = end
    return total, torch.tensor(float(len(offsets)), device=logits.device)


def instance_centres(xyz, labels, instance, offsets, things):
    """float (N, 3) centre (mean position) of each point's instance, and bool (N,) mask of the
    points that have one: a thing class (train ids ``things``) and an instance id > 0.

    Instances are told apart by (cloud of the ragged batch, class, instance id).
    """
    device = xyz.device
    things_t = torch.as_tensor(list(things), dtype=torch.int64, device=device)
    mask = torch.isin(labels, things_t) & (instance > 0)
    centres = torch.zeros_like(xyz)
    if not bool(mask.any()):
        return centres, mask
    counts = torch.diff(offsets, prepend=offsets.new_zeros(1))
    cloud = torch.repeat_interleave(torch.arange(len(offsets), device=device), counts)
    rows = torch.stack([cloud[mask], labels[mask], instance[mask]], dim=1)
    _, group, sizes = torch.unique(rows, dim=0, return_inverse=True, return_counts=True)
    sums = torch.zeros((len(sizes), 3), dtype=xyz.dtype, device=device).index_add_(0, group, xyz[mask])
    centres[mask] = (sums / sizes[:, None].to(xyz.dtype))[group]
    return centres, mask


def offset_l1_sum(point_offsets, xyz, labels, instance, offsets, things):
    """(sum over instance points of |predicted - true offset|_1, number of such points).

    point_offsets float (N, 3): predicted vector from each point to its instance centre;
    xyz float (N, 3); labels int64 (N,) train ids (ignored ids are simply not things);
    instance int64 (N,); offsets (B,) ragged batch; things: train ids of the thing classes.
    """
    centres, mask = instance_centres(xyz.float(), labels, instance, offsets, things)
    if not bool(mask.any()):
        return point_offsets.sum() * 0.0, torch.zeros((), device=xyz.device)
    error = (point_offsets[mask].float() - (centres[mask] - xyz[mask].float())).abs().sum(1)
    return error.sum(), torch.tensor(float(mask.sum()), device=xyz.device)


class CrossEntropyLoss:
    """``ce``: class-weighted cross-entropy, normalised by the total weight of labelled points.

    Args:
        class_weights: ``"frequency"`` (1/sqrt of the training label frequency, from
            ``train_set.label_histogram()``; config default ``train.class_weights``) or ``"none"``.
        ignore_index, train_set, device: given by the trainer.
    """

    def __init__(self, class_weights="frequency", *, ignore_index=(), train_set=None, device="cpu"):
        if class_weights not in ("frequency", "none"):
            raise ValueError(f"class_weights must be 'frequency' or 'none', got {class_weights!r}")
        self.weights = None
        if class_weights == "frequency" and train_set is not None:
            self.weights = frequency_class_weights(train_set.label_histogram(), ignore_index).to(device)

    def __call__(self, logits, targets, offsets):
        return weighted_ce_sum(logits, targets, self.weights)


class LovaszSoftmaxLoss:
    """``lovasz``: Lovasz-softmax per cloud, normalised by the number of clouds."""

    def __call__(self, logits, targets, offsets):
        return lovasz_sum(logits, targets, offsets)
