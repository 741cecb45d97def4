"""``pcseg info FILE``: point count, bounds, fields and the label histogram of one cloud."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pcseg.errors import PcsegValueError

_DEPTH_SUFFIXES = (".png", ".pgm")
# LAS/LAZ files with more points are summarised from their header alone unless --full
LAS_HEADER_ONLY = 2_000_000
_LAS_KEYS = ("version", "point_format", "compressed", "extra_dimensions", "scales", "offsets", "points_by_return",
             "crs", "vlrs", "evlrs", "system_identifier", "generating_software", "creation_date")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="point cloud (.bin .npy .npz .ply .pcd .las .laz .h5 .txt) or depth image (.png .pgm)")
    parser.add_argument("--labels", help="label file for the points (.label, .npy, int64 .bin)")
    parser.add_argument("--label-map", help="built-in name (semantickitti, s3dis, scannet, asprs) or a label-map YAML")
    parser.add_argument("--train-ids", action="store_true",
                        help="the labels are already train ids (e.g. Open3D-ML .npy), not raw ids")
    parser.add_argument("--dims", type=int, help=".bin/.txt: values per point when not the default layout (e.g. 5 for nuScenes, 6 for S3DIS xyzrgb)")
    parser.add_argument("--fields", help="comma-separated column names, e.g. x,y,z,intensity,ring")
    parser.add_argument("--drop-invalid", action="store_true", help="drop NaN/Inf points instead of failing")
    parser.add_argument("--intrinsics", help="depth images: Open3D camera JSON, or fx,fy,cx,cy")
    parser.add_argument("--depth-scale", type=float, default=1000.0, help="depth images: raw units per metre (default 1000)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--full", action="store_true",
                        help=f"LAS/LAZ over {LAS_HEADER_ONLY:,} points: read every point (bounds, class histogram) "
                        "instead of answering from the header")


def run(args) -> int:
    from pcseg.io import LabelMap

    path = Path(args.file)
    suffix = path.suffix.lower()
    label_map = LabelMap.load(args.label_map) if args.label_map else None
    if suffix in (".yaml", ".yml"):
        _print(args, _label_map_summary(LabelMap.from_yaml(path)))
        return 0
    if suffix == ".json":
        _print(args, _camera_summary(path))
        return 0
    if suffix in _DEPTH_SUFFIXES and not args.intrinsics:
        _print(args, _image_summary(path))
        return 0
    labels_only = _labels_only(path, args)
    if labels_only is not None:
        _print(args, _labels_summary(path, labels_only, label_map, args.train_ids))
        return 0
    las = None
    if suffix in (".las", ".laz"):
        from pcseg.io.las import las_header_summary

        las = las_header_summary(path)
        if label_map is None and not args.labels:
            label_map = LabelMap.builtin("asprs")  # LAS classification holds ASPRS codes
        if las["points"] > LAS_HEADER_ONLY and not args.full and not args.labels:
            summary = {"file": str(path), "points": las["points"], "fields": ["xyz", *las["dimensions"][3:]],
                       "bounds_min": las["bounds_min"], "bounds_max": las["bounds_max"],
                       "las": {k: las[k] for k in _LAS_KEYS},
                       "notes": [f"{las['points']:,} points: summary from the LAS header (bounds as the header "
                                 "states them, no class histogram); --full reads every point"]}
            _print(args, summary)
            return 0
    cloud, notes = _read_cloud(path, args)
    summary = summarize(cloud, label_map, labels_are_train_ids=args.train_ids)
    if las is not None:
        summary["las"] = {k: las[k] for k in _LAS_KEYS}
    if notes:
        summary["notes"] = notes + summary.get("notes", [])
    _print(args, summary)
    return 0


def _print(args, summary: dict) -> None:
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))


def _read_cloud(path: Path, args):
    """The cloud, reading labels given or found beside it; notes say what was guessed."""
    from pcseg.io import read_depth, read_points

    notes = []
    if path.suffix.lower() in _DEPTH_SUFFIXES:
        return read_depth(path, _intrinsics(args.intrinsics), depth_scale=args.depth_scale), notes
    options = {}
    if args.dims is not None:
        options["dims"] = args.dims
    if args.fields:
        options["record_fields"] = [f.strip() for f in args.fields.split(",")]
    if path.suffix.lower() == ".bin" and not options and path.name.endswith("_points.bin"):
        # mmdetection3d's S3DIS/ScanNet exports: float32 x, y, z, r, g, b
        options["dims"] = 6
        notes.append("*_points.bin: read as mmdetection3d's float32 x,y,z,r,g,b records (override with --dims/--fields)")
    labels = args.labels
    if labels is None:
        labels = _sibling_labels(path)
        if labels is not None:
            notes.append(f"labels found beside the scan: {labels}")
    return read_points(path, labels=labels, drop_invalid=args.drop_invalid, **options), notes


def _sibling_labels(path: Path):
    """SemanticKITTI's velodyne/X.bin -> labels/X.label; mmdetection3d's X_points.bin -> X_semantic.bin."""
    from pcseg.io.labels import kitti_label_path

    found = kitti_label_path(path)
    if found is None and path.name.endswith("_points.bin"):
        candidate = path.with_name(path.name[: -len("_points.bin")] + "_semantic.bin")
        found = candidate if candidate.is_file() else None
    return found


def _labels_only(path: Path, args):
    """int64 labels when ``path`` is a label file rather than a cloud, else None."""
    from pcseg.io import read_labels

    suffix = path.suffix.lower()
    if suffix == ".label" or path.name.endswith(("_semantic.bin", "_instance.bin")):
        return read_labels(path)
    if suffix == ".npy" and path.is_file():
        head = np.load(path, mmap_mode="r", allow_pickle=False)
        if head.dtype.kind in "iu" and (head.ndim == 1 or (head.ndim == 2 and head.shape[1] == 1)):
            return read_labels(path)
    return None


def _labels_summary(path, labels, label_map, train_ids: bool) -> dict:
    from pcseg.io import PointCloud

    # reuse the histogram code with a placeholder cloud of the right length
    cloud = PointCloud(xyz=np.zeros((len(labels), 3), np.float32), labels=labels, source=str(path))
    summary = summarize(cloud, label_map, labels_are_train_ids=train_ids)
    for key in ("bounds_min", "bounds_max", "offset", "fields"):
        summary.pop(key)
    summary["kind"] = "label file"
    return summary


def _label_map_summary(label_map) -> dict:
    return {
        "file": label_map.source,
        "kind": "label map",
        "name": label_map.name,
        "num_classes": label_map.num_classes,
        "raw_ids": len(label_map.raw_names),
        "ignore_index": label_map.ignore_index,
        "classes": [
            {"train_id": t, "name": n, "rgb": label_map.colors[t].tolist(), "ignored": t in label_map.ignore_index}
            for t, n in enumerate(label_map.class_names)
        ],
    }


def _camera_summary(path: Path) -> dict:
    from pcseg.io.depth import _parse_intrinsics

    fx, fy, cx, cy, size = _parse_intrinsics(path)
    return {"file": str(path), "kind": "camera intrinsics", "width": size[0], "height": size[1],
            "fx": fx, "fy": fy, "cx": cx, "cy": cy}


def _image_summary(path: Path) -> dict:
    from pcseg.io._common import existing_file
    from pcseg.io.depth import _pil_array, _read_pgm

    path = existing_file(path, "image")
    image = _read_pgm(path) if path.suffix.lower() == ".pgm" else _pil_array(path)
    summary = {"file": str(path), "kind": "image", "width": image.shape[1], "height": image.shape[0],
               "channels": 1 if image.ndim == 2 else image.shape[2], "dtype": str(image.dtype)}
    if image.ndim == 2 and image.dtype == np.uint16:
        valid = image[image > 0]
        summary["depth_pixels"] = int(valid.size)
        if valid.size:
            summary["depth_raw_range"] = [int(valid.min()), int(valid.max())]
        summary["hint"] = "a 16-bit depth image: add --intrinsics (and --depth-scale) to back-project it"
    return summary


def _intrinsics(text: str):
    if Path(text).exists() or text.endswith(".json"):
        return text
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise PcsegValueError(f"--intrinsics: expected a camera JSON path or fx,fy,cx,cy, got {text!r}")
    return tuple(values)


def summarize(cloud, label_map=None, labels_are_train_ids: bool = False) -> dict:
    """A JSON-friendly description of a cloud: count, world bounds, fields, label histogram.

    The histogram has one row per raw id present (with its name and train id when a label map is
    given); with ``labels_are_train_ids`` the rows are train ids named by the map's class names.
    """
    world = cloud.world_xyz()
    summary: dict = {
        "file": cloud.source,
        "points": len(cloud),
        "fields": ["xyz", *cloud.field_names],
        "bounds_min": world.min(axis=0).tolist(),
        "bounds_max": world.max(axis=0).tolist(),
        "offset": cloud.offset.tolist(),
    }
    if cloud.intensity is not None:
        summary["intensity_range"] = [float(cloud.intensity.min()), float(cloud.intensity.max())]
    if cloud.labels is not None:
        ids, counts = np.unique(cloud.labels, return_counts=True)
        rows = []
        for label_id, count in zip(ids.tolist(), counts.tolist()):
            row = {"id": label_id, "count": count, "percent": 100.0 * count / len(cloud)}
            if label_map is not None:
                if labels_are_train_ids:
                    ok = 0 <= label_id < label_map.num_classes
                    row["name"] = label_map.class_names[label_id] if ok else "(not a train id)"
                    row["ignored"] = label_id in label_map.ignore_index
                else:
                    row["name"] = label_map.raw_name(label_id)
                    try:
                        train_id = int(label_map.to_train(np.array([label_id]))[0])
                        row["train_id"] = train_id
                        row["train_name"] = label_map.class_names[train_id]
                        row["ignored"] = train_id in label_map.ignore_index
                    except PcsegValueError:
                        row["train_id"] = None
            rows.append(row)
        if not labels_are_train_ids:
            from pcseg.io.labelmap import fit_hint

            unmapped = [r["id"] for r in rows if "train_id" in r and r["train_id"] is None]
            if unmapped:
                summary.setdefault("notes", []).append(
                    f"{len(unmapped)} raw id(s) are not in label map {label_map.name}{fit_hint(ids)}")
            elif label_map is None and fit_hint(ids):
                summary.setdefault("notes", []).append(f"no --label-map given{fit_hint(ids)}")
        summary["label_map"] = label_map.name if label_map is not None else None
        summary["labels_are"] = "train ids" if labels_are_train_ids else "raw ids"
        summary["labels"] = rows
    return summary


def format_summary(summary: dict) -> str:
    """Plain-text rendering of :func:`summarize`'s dict (and of the other kinds' dicts)."""
    kind = summary.get("kind")
    if kind == "label map":
        lines = [f"file:    {summary['file']}", f"label map {summary['name']!r}: {summary['num_classes']} train ids "
                 f"from {summary['raw_ids']} raw ids, ignored {summary['ignore_index']}"]
        for c in summary["classes"]:
            flag = " [ignored]" if c["ignored"] else ""
            lines.append(f"  {c['train_id']:>3} {c['name']:<24} rgb {tuple(c['rgb'])}{flag}")
        return "\n".join(lines)
    if kind in ("camera intrinsics", "image"):
        return "\n".join(f"{k}: {v}" for k, v in summary.items())
    lines = [f"file:    {summary['file']}"]
    if kind == "label file":
        lines.append(f"labels:  {summary['points']:,}")
    else:
        lines += [
            f"points:  {summary['points']:,}",
            f"fields:  {', '.join(summary['fields'])}",
            "bounds:  min [" + ", ".join(f"{v:.3f}" for v in summary["bounds_min"]) + "]",
            "         max [" + ", ".join(f"{v:.3f}" for v in summary["bounds_max"]) + "]",
        ]
    if "las" in summary:
        las = summary["las"]
        lines.append(f"las:     LAS {las['version']}, point format {las['point_format']}"
                     + (", compressed (LAZ)" if las["compressed"] else "")
                     + (f", extra bytes {', '.join(las['extra_dimensions'])}" if las["extra_dimensions"] else ""))
        lines.append("         scales [" + ", ".join(f"{v:g}" for v in las["scales"]) + "], offsets ["
                     + ", ".join(f"{v:.10g}" for v in las["offsets"]) + "]")
        if las["points_by_return"]:
            lines.append("returns: " + ", ".join(f"{i + 1}: {n:,}" for i, n in enumerate(las["points_by_return"])))
        crs = las["crs"] or "(none in the header)"
        lines.append(f"crs:     {crs[:100]}{'...' if len(crs) > 100 else ''}")
    for note in summary.get("notes", []):
        lines.append(f"note:    {note}")
    if any(summary.get("offset", [])):
        lines.append("offset:  [" + ", ".join(f"{v:.3f}" for v in summary["offset"]) + "] (xyz stored local to it)")
    if "intensity_range" in summary:
        lo, hi = summary["intensity_range"]
        lines.append(f"intensity: {lo:g} .. {hi:g}")
    if "labels" in summary:
        title = f"labels ({summary['labels_are']}" + (f", map {summary['label_map']})" if summary["label_map"] else ")")
        lines.append(title + ":")
        for row in summary["labels"]:
            name = row.get("name", "")
            train = ""
            if "train_id" in row:
                train = f"-> {row['train_id']} {row['train_name']}" if row["train_id"] is not None else "-> (not in map)"
            if row.get("ignored"):
                train += " [ignored]"
            lines.append(f"  {row['id']:>6} {name:<24} {row['count']:>10,} {row['percent']:6.2f}%  {train}".rstrip())
    return "\n".join(lines)
