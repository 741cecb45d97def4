"""Scoring label files on disk: pair predictions with ground truth, count, write a report.

What ``pcseg score`` runs. Both sides may be single files or SemanticKITTI-layout folders
(``<root>/sequences/<SS>/labels/*.label`` for ground truth, ``.../predictions/*.label`` or
``.../labels/*.label`` for predictions), or plain folders of label files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pcseg.atomic import atomic_write_text
from pcseg.errors import PcsegFileNotFoundError, PcsegValueError
from pcseg.metrics.confusion import ConfusionMatrix

LABEL_SUFFIXES = (".label", ".npy")


@dataclass
class ScoreResult:
    """The pooled matrix over every scan and one small record per scan."""

    matrix: ConfusionMatrix
    per_scan: list[dict] = field(default_factory=list)
    boundary: ConfusionMatrix | None = None  # boundary points only, when a radius was given
    boundary_radius: float | None = None
    warnings: list[str] = field(default_factory=list)  # likely mistakes worth a line on stderr


def _label_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in LABEL_SUFFIXES)


def collect_label_files(root, prefer=("labels",), sequences=None) -> dict[tuple[str, str], Path]:
    """Map (sequence, scan stem) -> label file under ``root``.

    ``root``: a label file (key ("", stem)), a SemanticKITTI root with ``sequences/<SS>/<sub>/``,
    a sequence folder with ``<sub>/``, or a folder of label files. ``prefer``: sub-folder names
    tried in order (ground truth: labels; predictions: predictions, then labels).
    ``sequences``: optional list of sequence names to keep.
    """
    root = Path(root)
    if not root.exists():
        raise PcsegFileNotFoundError(f"label path not found: {root}")
    if root.is_file():
        return {("", root.stem): root}

    def from_sequence(seq_dir: Path, seq: str) -> dict:
        for sub in prefer:
            if (seq_dir / sub).is_dir():
                return {(seq, p.stem): p for p in _label_files(seq_dir / sub)}
        return {}

    found: dict[tuple[str, str], Path] = {}
    if (root / "sequences").is_dir():
        for seq_dir in sorted(p for p in (root / "sequences").iterdir() if p.is_dir()):
            if sequences is None or seq_dir.name in sequences:
                found.update(from_sequence(seq_dir, seq_dir.name))
    else:
        found = from_sequence(root, root.name) or {(root.name, p.stem): p for p in _label_files(root)}
        if sequences is not None:
            found = {k: v for k, v in found.items() if k[0] in sequences}
    if not found:
        raise PcsegFileNotFoundError(
            f"no label files ({', '.join(LABEL_SUFFIXES)}) under {root} "
            f"(looked in sequences/*/{{{','.join(prefer)}}}/, {{{','.join(prefer)}}}/ and the folder itself)"
        )
    return found


def pair_files(pred, gt, sequences=None) -> list[tuple[str, Path, Path]]:
    """[(scan key "SS/stem" or "stem", prediction file, ground-truth file)] in scan order.

    Raises :class:`PcsegValueError` when a ground-truth scan has no prediction (the official
    evaluator requires one for every scan); predictions without ground truth are ignored.
    """
    gt_files = collect_label_files(gt, prefer=("labels",), sequences=sequences)
    if Path(pred).is_file() and Path(gt).is_file():
        return [(Path(gt).stem, Path(pred), Path(gt))]
    if Path(pred).is_file() or Path(gt).is_file():
        raise PcsegValueError(f"score PRED and GT must both be files or both be folders: got {pred} and {gt}")
    pred_files = collect_label_files(pred, prefer=("predictions", "labels"), sequences=None)
    # folders without a sequences/ level are keyed by their own name: match on the stem then
    if len({k[0] for k in gt_files}) == 1 or len({k[0] for k in pred_files}) == 1:
        if len({k[0] for k in gt_files}) == 1 and len({k[0] for k in pred_files}) == 1:
            gt_files = {("", k[1]): v for k, v in gt_files.items()}
            pred_files = {("", k[1]): v for k, v in pred_files.items()}
    missing = [k for k in gt_files if k not in pred_files]
    if missing:
        shown = ", ".join("/".join(filter(None, k)) for k in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise PcsegValueError(
            f"{len(missing)} of {len(gt_files)} ground-truth scan(s) under {gt} have no prediction under {pred}: {shown}"
        )
    return [("/".join(filter(None, k)), pred_files[k], v) for k, v in sorted(gt_files.items())]


def points_for(gt_path: Path) -> Path:
    """The scan a SemanticKITTI ground-truth file labels: ``<seq>/velodyne/<stem>.bin``."""
    return gt_path.parent.parent / "velodyne" / f"{gt_path.stem}.bin"


def score_files(pred, gt, label_map, pred_ids: str = "raw", gt_ids: str = "raw", sequences=None,
                progress=None, boundary_radius: float | None = None, points=None) -> ScoreResult:
    """Score prediction label files against ground truth with a :class:`pcseg.io.LabelMap`.

    ``pred_ids``/``gt_ids``: ``"raw"`` (ids as SemanticKITTI stores them, mapped with the label
    map's learning_map, as the official evaluator does) or ``"train"`` (already 0..C-1). The
    upper 16 bits of ``.label`` entries (instance ids) are dropped.
    ``boundary_radius`` (metres): also score boundary points (see
    :func:`pcseg.metrics.boundary_mask`) into ``result.boundary``; the points come from
    ``points`` (a point file, two-file mode) or the layout's ``velodyne/<stem>.bin``.
    """
    from pcseg.io import read_labels, read_points

    for name, value in (("pred_ids", pred_ids), ("gt_ids", gt_ids)):
        if value not in ("raw", "train"):
            raise PcsegValueError(f"{name} must be 'raw' or 'train', got {value!r}")
    pairs = pair_files(pred, gt, sequences)
    if points is not None and len(pairs) != 1:
        raise PcsegValueError("points names one point file: it only applies when scoring two files")
    total = ConfusionMatrix(label_map.num_classes, label_map.ignore_index, label_map.class_names)
    result = ScoreResult(total)
    if boundary_radius is not None:
        result.boundary = ConfusionMatrix(total.num_classes, total.ignore_index, total.class_names)
        result.boundary_radius = float(boundary_radius)
    top = {"pred": 0, "gt": 0}
    for key, pred_path, gt_path in pairs if progress is None else progress(pairs):
        p = read_labels(pred_path)
        t = read_labels(gt_path)
        if len(p) != len(t):
            raise PcsegValueError(f"{pred_path} has {len(p)} labels but {gt_path} has {len(t)}")
        if pred_ids == "raw":
            top["pred"] = max(top["pred"], int(p.max(initial=0)))
            top["gt"] = max(top["gt"], int(t.max(initial=0)))
        p = _raw_to_train(p, pred_path, "--pred-ids", label_map) if pred_ids == "raw" else p
        t = _raw_to_train(t, gt_path, "--gt-ids", label_map) if gt_ids == "raw" else t
        scan = ConfusionMatrix(total.num_classes, total.ignore_index, total.class_names)
        try:
            scan.update(p, t)
        except PcsegValueError as exc:
            raise PcsegValueError(f"{pred_path} vs {gt_path}: {exc}") from None
        total.merge(scan)
        if result.boundary is not None:
            from pcseg.metrics.boundary import boundary_confusion

            cloud = read_points(points if points is not None else points_for(gt_path))
            if len(cloud) != len(t):
                raise PcsegValueError(f"{cloud.source or 'points'} has {len(cloud)} points but {gt_path} has {len(t)} labels")
            result.boundary.merge(boundary_confusion(cloud.xyz, p, t, boundary_radius, like=total))
        labeled = int(scan.matrix.sum())
        result.per_scan.append({
            "scan": key,
            "prediction": str(pred_path),
            "ground_truth": str(gt_path),
            "points": int(len(t)),
            "labeled_points": labeled,
            "miou": scan.miou() if labeled else None,
            "accuracy": scan.accuracy() if labeled else None,
        })
    classes = label_map.num_classes
    if pred_ids == "raw" and gt_ids == "raw" and top["pred"] < classes <= top["gt"]:
        result.warnings.append(
            f"every predicted id is below {classes} while the ground truth holds raw ids up to {top['gt']}: "
            f"if the predictions are train ids (pcseg segment --format npy writes those), pass --pred-ids train"
        )
    return result


def _raw_to_train(values, path, flag: str, label_map):
    """``label_map.to_train`` with a hint when the file evidently holds train ids already."""
    try:
        return label_map.to_train(values)
    except PcsegValueError as exc:
        if values.size and values.min() >= 0 and values.max() < label_map.num_classes:
            note = " (pcseg segment --format npy writes train ids)" if Path(path).suffix.lower() == ".npy" else ""
            raise PcsegValueError(
                f"{path}: holds ids that are not raw ids of label map {label_map.name} but all lie in "
                f"0..{label_map.num_classes - 1}: these look like train ids{note}; pass {flag} train"
            ) from None
        raise PcsegValueError(f"{path}: {exc}") from None


def boundary_summary(result: ScoreResult) -> dict:
    """JSON-ready boundary scores: radius, counted points, mIoU (both conventions), per-class IoU."""
    bcm = result.boundary
    points = int(bcm.matrix.sum())
    summary = {"radius_m": result.boundary_radius, "points": points}
    if points:
        iou = bcm.iou()
        summary.update({
            "miou": bcm.miou(),
            "miou_absent_zero": bcm.miou(absent="zero"),
            "accuracy": bcm.accuracy(),
            "per_class_iou": {n: (float(v) if np.isfinite(v) else None) for n, v in zip(bcm.class_names, iou)},
        })
    return summary


def write_json_atomic(data, path) -> Path:
    """Write ``data`` as indented strict JSON (NaN is an error), atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_report(result: ScoreResult, out_dir, extra: dict | None = None, plots: bool = True,
                 colors=None) -> dict[str, Path]:
    """Write ``metrics.json`` (scores, matrix, per-scan records, ``extra``) and, with ``plots``,
    ``confusion_matrix.png`` and ``class_iou.png`` into ``out_dir``. Returns name -> path."""
    from pcseg.metrics.plots import plot_class_iou, plot_confusion_matrix

    out_dir = Path(out_dir)
    cm = result.matrix
    data = {**(extra or {}), **cm.to_dict(), "scans": len(result.per_scan), "per_scan": result.per_scan}
    if result.boundary is not None:
        data["boundary"] = boundary_summary(result)
    written = {"metrics": write_json_atomic(data, out_dir / "metrics.json")}
    if plots:
        written["confusion_matrix"] = plot_confusion_matrix(cm, out_dir / "confusion_matrix.png")
        written["class_iou"] = plot_class_iou(cm, out_dir / "class_iou.png", colors=colors)
    return written


def score_panoptic_files(pred, gt, label_map, min_points: int = 50, things=None, sequences=None,
                         progress=None):
    """Panoptic quality of predicted ``.label`` files (instance ids in the upper 16 bits).

    Pairs files like :func:`score_files`; both sides hold raw ids (mapped with the label map's
    learning map, as the official ``evaluate_panoptic.py`` does). ``things``: train ids of the
    thing classes (default: the SemanticKITTI thing classes found by name in the label map).
    Returns ``(PanopticQuality over every scan, per-scan records)``.
    """
    from pcseg.io import read_labels
    from pcseg.metrics.panoptic import PanopticQuality, thing_classes

    pairs = pair_files(pred, gt, sequences)
    for _, pred_path, gt_path in pairs:
        for path in (pred_path, gt_path):
            if path.suffix.lower() != ".label":
                raise PcsegValueError(f"{path}: panoptic scoring needs .label files (instance ids in the upper 16 bits)")
    things = thing_classes(label_map) if things is None else things
    total = PanopticQuality(label_map.num_classes, label_map.ignore_index, min_points, things, label_map.class_names)
    per_scan = []
    for key, pred_path, gt_path in pairs if progress is None else progress(pairs):
        p_sem, p_inst = read_labels(pred_path, return_instance=True)
        g_sem, g_inst = read_labels(gt_path, return_instance=True)
        if len(p_sem) != len(g_sem):
            raise PcsegValueError(f"{pred_path} has {len(p_sem)} labels but {gt_path} has {len(g_sem)}")
        scan = PanopticQuality(total.num_classes, total.ignore_index, min_points, things, total.class_names)
        try:
            scan.update(label_map.to_train(p_sem), p_inst, label_map.to_train(g_sem), g_inst)
        except PcsegValueError as exc:
            raise PcsegValueError(f"{pred_path} vs {gt_path}: {exc}") from None
        total.merge(scan)
        labeled = int(scan.semantic.matrix.sum())
        s = scan.summary() if labeled else {}
        per_scan.append({"scan": key, "prediction": str(pred_path), "ground_truth": str(gt_path),
                         "points": int(len(g_sem)), "labeled_points": labeled, "pq": s.get("pq"), "miou": s.get("miou")})
    return total, per_scan
