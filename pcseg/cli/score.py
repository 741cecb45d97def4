"""``pcseg score PRED GT``: mIoU and friends of predicted label files against ground truth;
``--panoptic``: panoptic quality (PQ/SQ/RQ) with instance ids from ``.label`` files."""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument("pred", help="predicted labels: a .label/.npy file, or a folder "
                        "(SemanticKITTI layout sequences/SS/predictions or labels, or plain label files)")
    parser.add_argument("gt", help="ground truth: a file, or a folder (sequences/SS/labels or plain label files)")
    parser.add_argument("--label-map", default="semantickitti",
                        help="built-in label map name or a label-map YAML (default: semantickitti)")
    parser.add_argument("--out", default="pcseg-score",
                        help="folder for metrics.json, confusion_matrix.png, class_iou.png (default: ./pcseg-score)")
    parser.add_argument("--pred-ids", choices=("raw", "train"), default="raw",
                        help="predictions hold raw ids (as SemanticKITTI stores them; default) or train ids")
    parser.add_argument("--gt-ids", choices=("raw", "train"), default="raw",
                        help="ground truth holds raw ids (default) or train ids")
    parser.add_argument("--sequences", nargs="+", default=None, metavar="SS",
                        help="only score these sequences (folder layout)")
    parser.add_argument("--boundary-radius", type=float, default=None, metavar="METRES",
                        help="also score boundary points: those with a differently labeled ground-truth point "
                        "within this radius (points from sequences/SS/velodyne/*.bin, or --points)")
    parser.add_argument("--points", default=None, help="the scan's point file when scoring two files with --boundary-radius")
    parser.add_argument("--no-plots", action="store_true", help="write metrics.json only")
    parser.add_argument("--panoptic", action="store_true",
                        help="panoptic quality (PQ, SQ, RQ) instead: .label files with instance ids in the upper 16 bits, "
                        "SemanticKITTI benchmark rules; writes metrics.json only")
    parser.add_argument("--min-points", type=int, default=50,
                        help="--panoptic: smallest segment counted as a false positive or negative (default: 50)")


def run(args) -> int:
    from pcseg.io import LabelMap
    from pcseg.metrics.scoring import score_files, write_report

    label_map = LabelMap.load(args.label_map)
    if args.panoptic:
        return _run_panoptic(args, label_map)
    result = score_files(args.pred, args.gt, label_map, pred_ids=args.pred_ids, gt_ids=args.gt_ids,
                         sequences=args.sequences, boundary_radius=args.boundary_radius, points=args.points)
    cm = result.matrix
    if cm.matrix.sum() == 0:
        from pcseg.errors import PcsegValueError

        raise PcsegValueError(f"{args.gt}: every ground-truth point is ignored ({label_map.ignore_index}): nothing to score")
    for warning in result.warnings:
        print(f"pcseg score: warning: {warning}", file=sys.stderr)
    print(f"scored {len(result.per_scan)} scan(s), label map {label_map.name}")
    print(cm.table())
    if result.boundary is not None:
        from pcseg.metrics.scoring import boundary_summary

        b = boundary_summary(result)
        if b["points"]:
            print(f"boundary (r = {b['radius_m']} m, {b['points']} points): mIoU {100 * b['miou']:.2f}  "
                  f"(absent classes as 0: {100 * b['miou_absent_zero']:.2f})  OA {100 * b['accuracy']:.2f}")
        else:
            print(f"boundary (r = {b['radius_m']} m): no boundary points")
    extra = {"prediction": str(args.pred), "ground_truth": str(args.gt), "label_map": label_map.name,
             "pred_ids": args.pred_ids, "gt_ids": args.gt_ids}
    written = write_report(result, args.out, extra=extra, plots=not args.no_plots, colors=label_map.colors)
    for path in written.values():
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _run_panoptic(args, label_map) -> int:
    from pcseg.errors import PcsegValueError
    from pcseg.metrics.scoring import score_panoptic_files, write_json_atomic

    for name in ("boundary_radius", "points"):
        if getattr(args, name) is not None:
            raise PcsegValueError(f"--{name.replace('_', '-')} does not apply to --panoptic")
    if args.pred_ids != "raw" or args.gt_ids != "raw":
        raise PcsegValueError("--panoptic reads raw ids from .label files: --pred-ids/--gt-ids must stay raw")
    if args.min_points < 0:
        raise PcsegValueError(f"--min-points must be >= 0, got {args.min_points}")
    pq, per_scan = score_panoptic_files(args.pred, args.gt, label_map, min_points=args.min_points,
                                        sequences=args.sequences)
    if pq.semantic.matrix.sum() == 0:
        raise PcsegValueError(f"{args.gt}: every ground-truth point is ignored ({label_map.ignore_index}): nothing to score")
    print(f"panoptic quality of {len(per_scan)} scan(s), label map {label_map.name}")
    print(pq.table())
    data = {"prediction": str(args.pred), "ground_truth": str(args.gt), "label_map": label_map.name,
            **pq.to_dict(), "scans": len(per_scan), "per_scan": per_scan}
    from pathlib import Path

    path = write_json_atomic(data, Path(args.out) / "metrics.json")
    print(f"wrote {path}", file=sys.stderr)
    return 0
