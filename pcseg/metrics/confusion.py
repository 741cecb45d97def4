"""The confusion matrix every pcseg score is computed from, and the scores themselves.

Rows are target (ground-truth) train ids, columns predicted train ids, counts int64. Points
whose target is an ignored id are dropped before counting (their row stays zero); a
prediction of an ignored id on a labeled point stays in its column, so it counts as an error
of that point's class, as in the SemanticKITTI evaluator.
"""

from __future__ import annotations

import sys
from typing import Iterable, Sequence

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.metrics.boundary import boundary_confusion

# numpy integer dtypes torch can do arithmetic on without a copy; others are widened first
_TORCH_FRIENDLY = (np.uint8, np.int8, np.int16, np.int32, np.int64)


def _is_tensor(x) -> bool:
    # torch is only imported when the caller already uses it: a numpy-only user never pays for it
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _normalise_ignore(ignore_index, num_classes: int) -> tuple[int, ...]:
    if ignore_index is None:
        return ()
    ids = [ignore_index] if np.isscalar(ignore_index) else list(ignore_index)
    out = []
    for i in ids:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise PcsegValueError(f"ignore_index must be integer ids, got {i!r}")
        if not 0 <= int(i) < num_classes:
            raise PcsegValueError(f"ignore_index {int(i)} is outside [0, num_classes={num_classes})")
        out.append(int(i))
    return tuple(sorted(set(out)))


class ConfusionMatrix:
    """Accumulates a (C, C) int64 confusion matrix and derives accuracy, IoU and friends.

    Args:
        num_classes: C, the number of train ids (labels are ``0..C-1``).
        ignore_index: one train id or a list of them. Points whose *target* is ignored are
            skipped entirely; an ignored id *predicted* on a labeled point is an error.
            Ignored classes are left out of every mean and report NaN per class.
        class_names: C names for tables, plots and JSON (default ``"class_<i>"``).

    Counts live on the device of the tensors given to :meth:`update` (a torch tensor on that
    device, or a numpy array for numpy input), so GPU evaluation needs no copies per batch;
    :attr:`matrix` always returns a numpy copy.

    Classes absent from both target and prediction (union 0) have IoU NaN and are excluded
    from :meth:`miou` by default; ``miou(absent="zero")`` counts them as 0 instead, which is
    exactly what the official SemanticKITTI evaluator (semantic-kitti-api) reports.
    """

    def __init__(self, num_classes: int, ignore_index=None, class_names: Sequence[str] | None = None):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise PcsegValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.ignore_index = _normalise_ignore(ignore_index, self.num_classes)
        if class_names is None:
            class_names = [f"class_{i}" for i in range(self.num_classes)]
        class_names = [str(n) for n in class_names]
        if len(class_names) != self.num_classes:
            raise PcsegValueError(
                f"class_names has {len(class_names)} names but num_classes is {self.num_classes}"
            )
        self.class_names = class_names
        self._counts = np.zeros(self.num_classes * self.num_classes, dtype=np.int64)
        self._workspace = None  # reused CPU key buffer: a fresh 80 MB tensor per call costs page faults

    # ------------------------------------------------------------------ accumulation
    def reset(self) -> None:
        """Zero the counts (keeps the device they live on)."""
        self._counts = self._counts * 0 if _is_tensor(self._counts) else np.zeros_like(self._counts)

    def update(self, pred, target) -> "ConfusionMatrix":
        """Count one batch. ``pred`` and ``target``: integer train ids of the same shape
        (numpy arrays or torch tensors on one device; a trailing dimension of size 1 is
        dropped). Returns ``self`` so calls chain.

        Raises :class:`PcsegValueError` for float or bool labels, a shape mismatch, empty
        input, or any id outside ``[0, num_classes)`` (naming the value and how many).
        """
        C = self.num_classes
        if not (_is_tensor(pred) or _is_tensor(target)):
            # numpy in, numpy counting: a numpy-only caller (pcseg score, viz) never imports torch
            pred_a, pred_u32 = self._as_array(pred, "pred")
            target_a, target_u32 = self._as_array(target, "target")
            self._check_shapes(pred_a.shape, target_a.shape)
            pred_a, target_a = pred_a.reshape(-1), target_a.reshape(-1)
            self._check_range(pred_a, "pred", pred_u32)
            self._check_range(target_a, "target", target_u32)
            n = pred_a.size
            ws = self._workspace
            if not isinstance(ws, np.ndarray) or ws.size < n:
                self._workspace = ws = np.empty(n, dtype=np.int64)
            keys = ws[:n]
            # int64 arithmetic whatever the inputs' dtype, so uint8 ids cannot overflow the key
            np.multiply(target_a, C, out=keys, dtype=np.int64)
            np.add(keys, pred_a, out=keys, dtype=np.int64)
            counts = np.bincount(keys, minlength=C * C)
            if self.ignore_index:
                counts.reshape(C, C)[list(self.ignore_index)] = 0
            self._accumulate(counts)
            return self

        import torch

        pred_t, pred_u32 = self._as_tensor(pred, "pred")
        target_t, target_u32 = self._as_tensor(target, "target")
        if pred_t.device != target_t.device:
            raise PcsegValueError(f"pred is on {pred_t.device} but target is on {target_t.device}")
        self._check_shapes(tuple(pred_t.shape), tuple(target_t.shape))
        pred_t = pred_t.reshape(-1)
        target_t = target_t.reshape(-1)
        self._check_range(pred_t, "pred", pred_u32)
        self._check_range(target_t, "target", target_u32)

        n = pred_t.numel()
        if pred_t.device.type == "cpu":
            # key = target * C + pred, written into a reused buffer of the inputs' common dtype
            key_dtype = torch.promote_types(pred_t.dtype, target_t.dtype)
            ws = self._workspace
            if not _is_tensor(ws) or ws.numel() < n or ws.dtype != key_dtype:
                self._workspace = torch.empty(n, dtype=key_dtype)
            keys = self._workspace[:n]
            torch.add(pred_t, target_t, alpha=C, out=keys)
        else:
            keys = torch.add(pred_t.long(), target_t.long(), alpha=C)
        counts = torch.bincount(keys, minlength=C * C)
        if self.ignore_index:
            # rows are targets: dropping ignored targets after counting avoids a masked copy
            rows = counts.view(C, C)
            rows[list(self.ignore_index)] = 0
        self._accumulate(counts)
        return self

    @staticmethod
    def _check_shapes(pred_shape, target_shape) -> None:
        if pred_shape != target_shape:
            raise PcsegValueError(f"pred and target must have the same shape, got {pred_shape} and {target_shape}")
        if int(np.prod(pred_shape)) == 0:
            raise PcsegValueError("pred and target are empty: nothing to score")

    @staticmethod
    def _as_array(x, name: str):
        """(numpy array, was_uint32) of integer ids, sharing memory where it can."""
        arr = np.asarray(x)
        if arr.dtype.kind not in "iu":
            raise PcsegValueError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
        was_uint32 = arr.dtype == np.uint32
        if was_uint32:
            arr = np.ascontiguousarray(arr).view(np.int32)
        elif arr.dtype == np.uint64:
            if arr.size and arr.max() > np.iinfo(np.int64).max:
                raise PcsegValueError(f"{name} has ids beyond int64, e.g. {arr.max()}")
            arr = arr.astype(np.int64)
        while arr.ndim > 1 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        return arr, was_uint32

    def _as_tensor(self, x, name: str):
        """(1-D-able tensor, was_uint32): integer ids as a torch tensor sharing memory where it
        can. uint32 (SemanticKITTI .label) is viewed as int32: no copy; ids >= 2**31 show up as
        negatives and are reported with their unsigned value."""
        import torch

        was_uint32 = False
        if _is_tensor(x):
            t = x
        else:
            arr = np.asarray(x)
            if arr.dtype.kind not in "iu":
                raise PcsegValueError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
            if arr.dtype == np.uint32:
                arr, was_uint32 = np.ascontiguousarray(arr).view(np.int32), True
            elif arr.dtype.type not in _TORCH_FRIENDLY:
                if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
                    raise PcsegValueError(f"{name} has ids beyond int64, e.g. {arr.max()}")
                arr = arr.astype(np.int64)
            t = torch.from_numpy(np.ascontiguousarray(arr))
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise PcsegValueError(f"{name} must hold integer class ids, got dtype {t.dtype}")
        if t.dtype == torch.uint32:
            t, was_uint32 = t.view(torch.int32), True
        if t.dtype not in (torch.int32, torch.int64) or (t.dtype == torch.int32 and self.num_classes > 46340):
            # the key target * C + pred is computed in the inputs' dtype: it must not overflow
            t = t.long()
        while t.dim() > 1 and t.shape[-1] == 1:
            t = t.squeeze(-1)
        return t, was_uint32

    def _check_range(self, ids, name: str, was_uint32: bool = False) -> None:
        if isinstance(ids, np.ndarray):
            if ids.dtype.kind == "i":
                # one pass instead of min + max: viewed unsigned, negative ids become huge
                if int(ids.view(ids.dtype.str.replace("i", "u")).max()) < self.num_classes:
                    return
            elif int(ids.max()) < self.num_classes:
                return
            lo, hi = int(ids.min()), int(ids.max())
        else:
            import torch

            lo, hi = (int(v) for v in torch.stack(torch.aminmax(ids)).tolist())
        if lo >= 0 and hi < self.num_classes:
            return
        bad = (ids < 0) | (ids >= self.num_classes)
        count = int(bad.sum())
        value = lo if lo < 0 else hi
        if was_uint32 and value < 0:
            value += 2**32
        raise PcsegValueError(
            f"{name} has {count} id(s) outside [0, num_classes={self.num_classes}), e.g. {value}"
        )

    def _accumulate(self, counts) -> None:
        if isinstance(counts, np.ndarray) and not _is_tensor(self._counts):
            self._counts += counts
            return
        import torch

        if _is_tensor(self._counts) and isinstance(counts, np.ndarray):
            self._counts += torch.from_numpy(counts).to(self._counts.device)
        elif _is_tensor(self._counts):
            if self._counts.device != counts.device:
                self._counts = self._counts.to(counts.device)
            self._counts += counts
        elif counts.device.type == "cpu":
            self._counts += counts.numpy()
        else:
            self._counts = torch.from_numpy(self._counts).to(counts.device) + counts

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix's counts (same classes and ignore ids) into this one."""
        if not isinstance(other, ConfusionMatrix):
            raise PcsegValueError(f"merge expects a ConfusionMatrix, got {type(other).__name__}")
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise PcsegValueError(
                f"cannot merge a matrix of {other.num_classes} classes ignoring {list(other.ignore_index)} "
                f"into one of {self.num_classes} classes ignoring {list(self.ignore_index)}"
            )
        self._counts = self._counts + self._counts_like(other._counts)
        return self

    def _counts_like(self, counts):
        if _is_tensor(self._counts):
            import torch

            if _is_tensor(counts):
                return counts.to(self._counts.device)
            return torch.from_numpy(counts).to(self._counts.device)
        return counts.cpu().numpy() if _is_tensor(counts) else counts

    def all_reduce(self, group=None) -> "ConfusionMatrix":
        """Sum the counts over every process of ``torch.distributed`` (in place); a no-op when
        it is not initialised. Counts move to the current CUDA device for the NCCL backend."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        counts = self._counts if _is_tensor(self._counts) else torch.from_numpy(self._counts)
        if dist.get_backend(group) == "nccl" and counts.device.type != "cuda":
            counts = counts.to(torch.device("cuda", torch.cuda.current_device()))
        counts = counts.clone()
        dist.all_reduce(counts, op=dist.ReduceOp.SUM, group=group)
        self._counts = counts
        return self

    @property
    def matrix(self) -> np.ndarray:
        """int64 (C, C) copy: ``matrix[t, p]`` = points with target ``t`` predicted ``p``."""
        counts = self._counts.cpu().numpy() if _is_tensor(self._counts) else self._counts
        return counts.reshape(self.num_classes, self.num_classes).copy()

    # ------------------------------------------------------------------ scores
    @property
    def evaluated(self) -> np.ndarray:
        """bool (C,): classes that enter the means (every class but the ignored ones)."""
        keep = np.ones(self.num_classes, dtype=bool)
        keep[list(self.ignore_index)] = False
        return keep

    def _stats(self):
        m = self.matrix.astype(np.float64)
        total = m.sum()
        if total == 0:
            raise PcsegValueError("the confusion matrix is empty: no labeled (non-ignored) point was counted")
        tp = np.diag(m)
        return m, tp, m.sum(axis=1), m.sum(axis=0), total

    @staticmethod
    def _ratio(num, den, keep):
        out = np.full(num.shape, np.nan)
        ok = keep & (den > 0)
        out[ok] = num[ok] / den[ok]
        return out

    def accuracy(self) -> float:
        """Overall point accuracy: correct / labeled points (points predicted as an ignored id
        count as wrong; the official SemanticKITTI script instead drops them from its denominator)."""
        _, tp, _, _, total = self._stats()
        return float(tp.sum() / total)

    def recall(self) -> np.ndarray:
        """float64 (C,): per-class recall = accuracy of the class = TP / target points; NaN for
        ignored classes and classes with no target point."""
        _, tp, rows, _, _ = self._stats()
        return self._ratio(tp, rows, self.evaluated)

    def class_accuracy(self) -> np.ndarray:
        """Alias of :meth:`recall` (per-class accuracy)."""
        return self.recall()

    def precision(self) -> np.ndarray:
        """float64 (C,): TP / points predicted as the class (among labeled points); NaN for
        ignored classes and classes never predicted."""
        _, tp, _, cols, _ = self._stats()
        return self._ratio(tp, cols, self.evaluated)

    def mean_accuracy(self) -> float:
        """Mean of per-class recall over evaluated classes that have target points."""
        return float(np.nanmean(self.recall()))

    def iou(self) -> np.ndarray:
        """float64 (C,): TP / (TP + FP + FN) per class; NaN for ignored classes and for
        classes absent from both target and prediction."""
        _, tp, rows, cols, _ = self._stats()
        return self._ratio(tp, rows + cols - tp, self.evaluated)

    def miou(self, absent: str = "exclude") -> float:
        """Mean IoU over the evaluated (non-ignored) classes.

        ``absent="exclude"`` (default): classes absent from both target and prediction are
        left out of the mean. ``absent="zero"``: they count as IoU 0 and the mean is over all
        evaluated classes, exactly the official SemanticKITTI evaluator's number.
        ``absent="target"``: the mean over the classes present in the target (ground truth), so a
        class only predicted counts as a false positive of the others but not as a term.
        """
        iou = self.iou()[self.evaluated]
        if absent == "exclude":
            return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
        if absent == "zero":
            return float(np.nan_to_num(iou, nan=0.0).mean())
        if absent == "target":
            present = self.matrix.sum(axis=1)[self.evaluated] > 0
            return float(iou[present].mean()) if present.any() else float("nan")
        raise PcsegValueError(f"absent must be 'exclude', 'zero' or 'target', got {absent!r}")

    def fwiou(self) -> float:
        """Frequency-weighted IoU: sum over classes of (target points / labeled points) * IoU."""
        _, _, rows, _, total = self._stats()
        iou = np.nan_to_num(self.iou(), nan=0.0)
        return float((rows / total * iou)[self.evaluated].sum())

    def boundary_miou(self, points, pred, target, radius: float, absent: str = "exclude") -> float:
        """mIoU of one scan restricted to its boundary points (see :func:`boundary_mask`).

        ``points`` float (N, 3) in metres, ``pred``/``target`` integer (N,) train ids,
        ``radius`` in metres. Uses this matrix's classes and ignore ids; does not change its
        counts (use :func:`pcseg.metrics.boundary_confusion` to accumulate over scans).
        NaN when the scan has no boundary point.
        """
        cm = boundary_confusion(points, pred, target, radius, like=self)
        if cm.matrix.sum() == 0:
            return float("nan")  # a scan of one class has no boundary
        return cm.miou(absent=absent)

    # ------------------------------------------------------------------ reports
    def to_dict(self) -> dict:
        """JSON-ready summary: headline scores, per-class scores and counts, the matrix
        (NaN written as None)."""
        m = self.matrix
        iou, rec, prec = self.iou(), self.recall(), self.precision()

        def num(x):
            return None if not np.isfinite(x) else float(x)

        per_class = {}
        for c, name in enumerate(self.class_names):
            per_class[name] = {
                "id": c,
                "ignored": c in self.ignore_index,
                "iou": num(iou[c]),
                "accuracy": num(rec[c]),
                "precision": num(prec[c]),
                "recall": num(rec[c]),
                "points": int(m[c].sum()),
                "predicted": int(m[:, c].sum()),
            }
        return {
            "num_classes": self.num_classes,
            "ignore_index": list(self.ignore_index),
            "class_names": list(self.class_names),
            "points": int(m.sum()),
            "accuracy": num(self.accuracy()),
            "mean_accuracy": num(self.mean_accuracy()),
            "miou": num(self.miou()),
            "miou_absent_zero": num(self.miou(absent="zero")),
            "fwiou": num(self.fwiou()),
            "per_class": per_class,
            "confusion_matrix": m.tolist(),
        }

    def table(self, digits: int = 2) -> str:
        """An aligned text table: one row per evaluated class (name, IoU %, accuracy %,
        precision %, target points, predicted points), then mIoU (both conventions), mAcc,
        OA and fwIoU."""
        m = self.matrix
        iou, rec, prec = self.iou(), self.recall(), self.precision()

        def pct(x):
            return "-" if not np.isfinite(x) else f"{100 * x:.{digits}f}"

        header = ["class", "IoU", "Acc", "Prec", "points", "predicted"]
        rows = [
            [self.class_names[c], pct(iou[c]), pct(rec[c]), pct(prec[c]), str(int(m[c].sum())), str(int(m[:, c].sum()))]
            for c in range(self.num_classes)
            if c not in self.ignore_index
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

        def fmt(r):
            return "  ".join(r[i].ljust(widths[i]) if i == 0 else r[i].rjust(widths[i]) for i in range(len(r)))

        lines = [fmt(header), "-" * (sum(widths) + 2 * (len(widths) - 1))]
        lines += [fmt(r) for r in rows]
        lines.append("-" * len(lines[1]))
        lines.append(f"mIoU {pct(self.miou())}  (absent classes as 0: {pct(self.miou(absent='zero'))})")
        lines.append(
            f"mAcc {pct(self.mean_accuracy())}  OA {pct(self.accuracy())}  fwIoU {pct(self.fwiou())}  "
            f"labeled points {int(m.sum())}"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={list(self.ignore_index)}, "
            f"points={int(self.matrix.sum())})"
        )


def merge_all(matrices: Iterable[ConfusionMatrix]) -> ConfusionMatrix:
    """Sum several matrices of the same classes into a new one."""
    matrices = list(matrices)
    if not matrices:
        raise PcsegValueError("merge_all needs at least one ConfusionMatrix")
    first = matrices[0]
    out = ConfusionMatrix(first.num_classes, first.ignore_index, first.class_names)
    for cm in matrices:
        out.merge(cm)
    return out
