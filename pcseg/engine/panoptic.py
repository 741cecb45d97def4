"""Panoptic prediction and evaluation of models with an instance head (``forward_panoptic``).

    semantic, instance = predict_panoptic(model, xyz, feats, offsets, ignore_index=(0,))
    pq = evaluate_panoptic(model, dataset, label_map, device)      # a PanopticQuality
"""

from __future__ import annotations

import torch

from pcseg.errors import PcsegValueError


def is_panoptic(model) -> bool:
    """Whether ``model`` (or the model a DDP/wrapper holds) has an instance head."""
    return hasattr(model, "forward_panoptic") and hasattr(model, "instances") and hasattr(model, "things")


def require_panoptic(model, where: str = "model"):
    if not is_panoptic(model):
        raise PcsegValueError(f"{where}: {type(model).__name__} has no instance head (forward_panoptic); "
                              "train a panoptic model, e.g. model.name: PanopticMinkUNet")


@torch.no_grad()
def predict_panoptic(model, xyz, feats, offsets, ignore_index=(), amp_dtype=None):
    """``(semantic (N,) int64 train ids, instance (N,) int64)`` of a ragged batch.

    xyz (N,3) float32, feats (N,C_in) float32, offsets (B,) int64, all on the model's device.
    Ignored classes are never predicted; instance ids are 0 on stuff and 1.. per cloud on things.
    """
    from pcseg.engine.inference import mask_ignored

    require_panoptic(model)
    device = xyz.device
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits, point_offsets = model.forward_panoptic(xyz, feats, offsets)
    semantic = mask_ignored(logits.float(), ignore_index).argmax(1)
    instance = model.instances(xyz, point_offsets.float(), semantic, offsets)
    return semantic, instance


@torch.no_grad()
def evaluate_panoptic(model, dataset, label_map, device="cpu", min_points: int = 50, things=None,
                      amp_dtype=None, progress=False):
    """Panoptic quality of ``model`` over every scan of ``dataset`` (no augmentation).

    Scans are run one at a time; ground truth comes from the samples' ``labels`` (train ids)
    and ``instance``. ``things``: the thing classes scored (default: the model's). Returns a
    :class:`pcseg.metrics.PanopticQuality`.
    """
    from tqdm import tqdm

    from pcseg.datasets import collate_ragged
    from pcseg.metrics import PanopticQuality

    require_panoptic(model)
    pq = PanopticQuality(label_map.num_classes, label_map.ignore_index, min_points,
                         list(model.things if things is None else things), label_map.class_names)
    was_training = model.training
    model.eval()
    for i in tqdm(range(len(dataset)), desc="panoptic eval", disable=not progress, leave=False, dynamic_ncols=True):
        batch = collate_ragged([dataset[i]])
        if "instance" not in batch:
            raise PcsegValueError(f"{dataset.describe(i)}: no instance ids to score against")
        semantic, instance = predict_panoptic(model, batch["xyz"].to(device), batch["feats"].to(device),
                                              batch["offsets"].to(device), label_map.ignore_index, amp_dtype)
        labels = batch["labels"]
        keep = labels >= 0
        pq.update(semantic.cpu()[keep], instance.cpu()[keep], labels[keep], batch["instance"][keep])
    model.train(was_training)
    return pq
