"""Panoptic quality (PQ, SQ, RQ) of per-point classes and instance ids, SemanticKITTI rules.

A *segment* is the set of points sharing one (class, instance id) pair, in the prediction or in
the ground truth; stuff classes carry instance id 0, so each is one segment per scan. Within a
class, a predicted and a ground-truth segment match when their IoU is above 0.5 (such a match
is unique). Per class c, over every scan:

    SQ_c = sum of matched IoUs / TP_c        RQ_c = TP_c / (TP_c + FP_c / 2 + FN_c / 2)
    PQ_c = SQ_c * RQ_c

with the SemanticKITTI panoptic benchmark's rules (semantic-kitti-api, ``PanopticEval``):
points whose ground-truth class is ignored are removed first (from both sides); segments of an
ignored predicted class are never counted; an unmatched ground-truth segment is a false
negative, and an unmatched predicted segment a false positive, only when it has at least
``min_points`` points (matches of smaller segments still count). Means are over the
non-ignored classes, a class without any segment counting as 0, exactly as the official
evaluator does. PQ-dagger replaces the PQ of stuff classes by their semantic IoU.
"""

from __future__ import annotations

import sys
from typing import Sequence

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.metrics.confusion import ConfusionMatrix

# the SemanticKITTI panoptic benchmark's thing classes (evaluate_panoptic.py), by name
SEMANTICKITTI_THINGS = ("car", "bicycle", "motorcycle", "truck", "other-vehicle", "person", "bicyclist",
                        "motorcyclist")
EPS = 1e-15  # the official evaluator's floor on denominators
INSTANCE_LIMIT = 2**32  # the official evaluator packs (gt, pred) instance ids with an offset of 2**32


def thing_classes(label_map) -> list[int]:
    """Train ids of the SemanticKITTI thing classes present (by name) in ``label_map``."""
    names = list(label_map.class_names)
    return [names.index(n) for n in SEMANTICKITTI_THINGS if n in names]


def _as_numpy(x, name: str) -> np.ndarray:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise PcsegValueError(f"PanopticQuality.update: {name} must be one id per point (N,), got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise PcsegValueError(f"PanopticQuality.update: {name} must hold integer ids, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


class PanopticQuality:
    """Accumulates panoptic counts over scans; :meth:`summary` gives PQ/SQ/RQ and friends.

    Args:
        num_classes: C, the number of train ids (classes are ``0..C-1``).
        ignore_index: one train id or a list (SemanticKITTI: 0, unlabeled).
        min_points: smallest segment that counts as a false positive / false negative (50 on
            the SemanticKITTI benchmark).
        things: train ids of the thing classes (the rest of the non-ignored classes are stuff);
            None = no thing/stuff split (``pq_things`` etc. are then absent from the summary).
            :func:`thing_classes` gives the SemanticKITTI ones for a label map.
        class_names: C names for the table and JSON.
    """

    def __init__(self, num_classes: int, ignore_index=0, min_points: int = 50, things: Sequence[int] | None = None,
                 class_names: Sequence[str] | None = None):
        self.semantic = ConfusionMatrix(num_classes, ignore_index, class_names)
        self.num_classes = self.semantic.num_classes
        self.ignore_index = self.semantic.ignore_index
        self.class_names = self.semantic.class_names
        if isinstance(min_points, bool) or not isinstance(min_points, (int, np.integer)) or min_points < 0:
            raise PcsegValueError(f"min_points must be a non-negative integer, got {min_points!r}")
        self.min_points = int(min_points)
        self.include = np.array([c for c in range(self.num_classes) if c not in self.ignore_index], dtype=np.int64)
        if things is not None:
            things = sorted({int(t) for t in things})
            bad = [t for t in things if t not in set(self.include.tolist())]
            if bad:
                raise PcsegValueError(f"things: {bad[0]} is not a non-ignored class id in 0..{self.num_classes - 1}")
        self.things = things
        self.reset()

    def reset(self) -> None:
        """Zero every count."""
        self.semantic.reset()
        self.tp = np.zeros(self.num_classes, dtype=np.int64)
        self.fp = np.zeros(self.num_classes, dtype=np.int64)
        self.fn = np.zeros(self.num_classes, dtype=np.int64)
        self.iou_sum = np.zeros(self.num_classes, dtype=np.float64)

    def merge(self, other: "PanopticQuality") -> "PanopticQuality":
        """Add another accumulator's counts (same classes, ignore ids and min_points)."""
        if (other.num_classes, other.ignore_index, other.min_points) != (self.num_classes, self.ignore_index,
                                                                          self.min_points):
            raise PcsegValueError("PanopticQuality.merge: classes, ignore ids or min_points differ")
        self.semantic.merge(other.semantic)
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.iou_sum += other.iou_sum
        return self

    # ------------------------------------------------------------------ accumulation
    def update(self, pred_semantic, pred_instance, gt_semantic, gt_instance) -> "PanopticQuality":
        """Count one scan (call once per scan: segments never span two calls).

        All four are (N,) integer arrays (numpy or torch, any device): train ids in
        ``0..C-1`` and instance ids in ``0..2**32-1`` (0 for stuff). Returns ``self``.
        """
        ps = _as_numpy(pred_semantic, "pred_semantic")
        pi = _as_numpy(pred_instance, "pred_instance")
        gs = _as_numpy(gt_semantic, "gt_semantic")
        gi = _as_numpy(gt_instance, "gt_instance")
        n = len(gs)
        for name, a in (("pred_semantic", ps), ("pred_instance", pi), ("gt_instance", gi)):
            if len(a) != n:
                raise PcsegValueError(f"PanopticQuality.update: {name} has {len(a)} points but gt_semantic has {n}")
        for name, a in (("pred_instance", pi), ("gt_instance", gi)):
            if n and (a.min() < 0 or a.max() >= INSTANCE_LIMIT):
                raise PcsegValueError(f"PanopticQuality.update: {name} ids must be in 0..2**32-1, "
                                      f"got {int(a.min())}..{int(a.max())}")
        if n == 0:
            return self
        self.semantic.update(ps, gs)  # also checks the class ids' range
        included = np.zeros(self.num_classes, dtype=bool)
        included[self.include] = True
        keep = included[gs]
        ps, pi, gs, gi = ps[keep], pi[keep], gs[keep], gi[keep]
        counted = included[ps]  # a predicted ignored class forms no segment
        C = self.num_classes

        # segments: key class * D + instance rank (instance ids numbered densely), areas by bincount
        dg, g_rank = _dense(gi)
        g_key_of_point = gs * dg + g_rank
        g_area = np.bincount(g_key_of_point, minlength=C * dg)
        ps = ps[counted]
        dp, p_rank = _dense(pi[counted])
        p_key_of_point = ps * dp + p_rank
        p_area = np.bincount(p_key_of_point, minlength=C * dp)
        # overlaps: points of the same class on both sides, one count per (pred, gt) segment pair
        both = ps == gs[counted]
        pair, overlap = _counts(p_key_of_point[both] * dg + g_rank[counted][both], C * dp * dg)
        p_key = pair // dg
        g_key = (p_key // dp) * dg + pair % dg
        iou = overlap / (p_area[p_key] + g_area[g_key] - overlap).astype(np.float64)
        hit = iou > 0.5
        cls = p_key[hit] // dp
        self.tp += np.bincount(cls, minlength=C)
        self.iou_sum += np.bincount(cls, weights=iou[hit], minlength=C)
        p_unmatched = p_area >= max(self.min_points, 1)
        p_unmatched[p_key[hit]] = False
        g_unmatched = g_area >= max(self.min_points, 1)
        g_unmatched[g_key[hit]] = False
        self.fp += np.bincount(np.flatnonzero(p_unmatched) // dp, minlength=C)
        self.fn += np.bincount(np.flatnonzero(g_unmatched) // dg, minlength=C)
        return self

    # ------------------------------------------------------------------ scores
    def per_class(self) -> dict:
        """float64 (C,) arrays ``pq``, ``sq``, ``rq`` (NaN for ignored classes)."""
        tp = self.tp.astype(np.float64)
        sq = self.iou_sum / np.maximum(tp, EPS)
        rq = tp / np.maximum(tp + 0.5 * self.fp + 0.5 * self.fn, EPS)
        pq = sq * rq
        for a in (pq, sq, rq):
            a[list(self.ignore_index)] = np.nan
        return {"pq": pq, "sq": sq, "rq": rq}

    def semantic_iou(self) -> np.ndarray:
        """float64 (C,) semantic IoU, 0 for a class absent from both sides (the official
        evaluator's convention), NaN for ignored classes."""
        return np.nan_to_num(self.semantic.iou(), nan=0.0) + np.where(
            np.isin(np.arange(self.num_classes), self.ignore_index), np.nan, 0.0)

    def summary(self) -> dict:
        """Scores as floats and (C,) float64 arrays.

        Keys: ``pq``, ``sq``, ``rq`` (means over non-ignored classes), ``pq_class``,
        ``sq_class``, ``rq_class``, ``iou_class`` (per class, NaN for ignored ones), ``miou``
        (semantic, absent classes as 0), ``tp``, ``fp``, ``fn`` (int64 (C,)); with ``things``
        also ``pq_things``, ``sq_things``, ``rq_things``, ``pq_stuff``, ``sq_stuff``,
        ``rq_stuff`` and ``pq_dagger`` (PQ of things and IoU of stuff, averaged).
        """
        per = self.per_class()
        iou = self.semantic_iou()
        inc = self.include
        out = {
            "pq": float(per["pq"][inc].mean()), "sq": float(per["sq"][inc].mean()),
            "rq": float(per["rq"][inc].mean()), "miou": float(iou[inc].mean()),
            "pq_class": per["pq"], "sq_class": per["sq"], "rq_class": per["rq"], "iou_class": iou,
            "tp": self.tp.copy(), "fp": self.fp.copy(), "fn": self.fn.copy(),
        }
        if self.things is not None:
            things = np.array(self.things, dtype=np.int64)
            stuff = np.array([c for c in inc if c not in set(self.things)], dtype=np.int64)
            for part, ids in (("things", things), ("stuff", stuff)):
                for key in ("pq", "sq", "rq"):
                    out[f"{key}_{part}"] = float(per[key][ids].mean()) if len(ids) else float("nan")
            out["pq_dagger"] = float(np.concatenate([per["pq"][things], iou[stuff]]).mean())
        return out

    def to_dict(self) -> dict:
        """JSON-ready summary: headline floats and a ``per_class`` record by class name."""
        s = self.summary()
        data = {k: v for k, v in s.items() if isinstance(v, float)}
        data = {k: (None if not np.isfinite(v) else v) for k, v in data.items()}
        data["min_points"] = self.min_points
        data["things"] = [self.class_names[t] for t in self.things] if self.things is not None else None
        data["per_class"] = {
            self.class_names[c]: {"pq": float(s["pq_class"][c]), "sq": float(s["sq_class"][c]),
                                  "rq": float(s["rq_class"][c]), "iou": float(s["iou_class"][c]),
                                  "tp": int(self.tp[c]), "fp": int(self.fp[c]), "fn": int(self.fn[c])}
            for c in self.include
        }
        return data

    def table(self) -> str:
        """Aligned text: one row per non-ignored class (PQ, SQ, RQ, IoU in %, TP, FP, FN), then
        the means."""
        s = self.summary()
        width = max(10, *(len(self.class_names[c]) for c in self.include))
        things = set(self.things or ())
        lines = [f"{'class':<{width}} {'kind':<5} {'PQ':>6} {'SQ':>6} {'RQ':>6} {'IoU':>6} {'TP':>6} {'FP':>6} {'FN':>6}"]
        for c in self.include:
            kind = "thing" if c in things else ("stuff" if self.things is not None else "")
            lines.append(f"{self.class_names[c]:<{width}} {kind:<5} {100 * s['pq_class'][c]:6.2f} "
                         f"{100 * s['sq_class'][c]:6.2f} {100 * s['rq_class'][c]:6.2f} {100 * s['iou_class'][c]:6.2f} "
                         f"{self.tp[c]:6d} {self.fp[c]:6d} {self.fn[c]:6d}")
        lines.append(f"PQ {100 * s['pq']:.2f}  SQ {100 * s['sq']:.2f}  RQ {100 * s['rq']:.2f}  mIoU {100 * s['miou']:.2f}")
        if self.things is not None:
            lines.append(f"PQ-dagger {100 * s['pq_dagger']:.2f}  PQ things {100 * s['pq_things']:.2f}  "
                         f"PQ stuff {100 * s['pq_stuff']:.2f}  (min_points {self.min_points})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"PanopticQuality({self.num_classes} classes, ignore {list(self.ignore_index)}, min_points {self.min_points})"


def _dense(values: np.ndarray) -> tuple[int, np.ndarray]:
    """(number of distinct values D, each value's rank 0..D-1 among them) of non-negative ints;
    a bincount table when the values are small (instance ids of .label files), else a sort."""
    if len(values) == 0:
        return 1, values
    top = int(values.max())
    if top <= 4 * len(values) + 65536:
        present = np.bincount(values, minlength=top + 1) > 0
        rank = np.cumsum(present) - 1
        return int(present.sum()), rank[values]
    distinct, rank = np.unique(values, return_inverse=True)
    return len(distinct), rank.reshape(-1)


def _counts(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys in increasing order, their counts) of int64 keys in ``0..size-1``."""
    if size <= 8 * len(keys) + (1 << 20):
        counts = np.bincount(keys, minlength=size)
        present = np.flatnonzero(counts)
        return present, counts[present]
    return np.unique(keys, return_counts=True)
