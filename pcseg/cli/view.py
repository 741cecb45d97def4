"""``pcseg view FILE``: show a labeled cloud in an Open3D window, render it to PNG headlessly, or
write an interactive HTML page (``--html``)."""

from __future__ import annotations

import sys
from pathlib import Path

MODES = ("gt", "pred", "errors", "intensity", "height", "rgb", "compare")


def _color(text: str):
    from pcseg.errors import PcsegValueError

    named = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128), "gray": (128, 128, 128)}
    if text.lower() in named:
        return named[text.lower()]
    try:
        rgb = tuple(int(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise PcsegValueError(f"--background must be white, black, grey or R,G,B in 0..255, got {text!r}")
    return rgb


def add_arguments(parser) -> None:
    parser.add_argument("path", help="a point cloud file, or a sequence folder (velodyne/, labels/, predictions/) "
                        "or folder of point files to step through")
    parser.add_argument("--labels", help="ground-truth label file (a folder when PATH is a folder)")
    parser.add_argument("--pred", help="predicted label file (a folder when PATH is a folder)")
    parser.add_argument("--label-map", default=None,
                        help="built-in label map name or YAML (default: asprs for LAS/LAZ files, "
                        "semantickitti when labels are shown)")
    parser.add_argument("--label-ids", choices=("raw", "train"), default="raw",
                        help="--labels hold raw ids as stored (default) or train ids")
    parser.add_argument("--pred-ids", choices=("raw", "train"), default="raw",
                        help="--pred holds raw ids as stored (default) or train ids")
    parser.add_argument("--png", metavar="OUT",
                        help="render headlessly to this PNG instead of opening a window (a folder: one PNG per scan)")
    parser.add_argument("--html", metavar="OUT",
                        help="write one self-contained interactive page (WebGL): ground truth / prediction / "
                        "errors buttons, legend with per-class IoU, hover with class and coordinates")
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="colours: gt, pred, errors, intensity, height, rgb; compare = gt | pred | errors "
                        "side by side (--png only; default there when labels and pred are given)")
    parser.add_argument("--view", choices=("perspective", "bev"), default="perspective", help="camera preset for --png")
    parser.add_argument("--width", type=int, default=None,
                        help="render width in pixels (per panel for compare; default 960), or the window's "
                        "(default: fit the screen)")
    parser.add_argument("--height", type=int, default=None, help="render height in pixels (default 600), or the window's")
    parser.add_argument("--point-size", type=float, default=2.0, help="point size in pixels")
    parser.add_argument("--background", default="white", help="white, black, grey or R,G,B")
    parser.add_argument("--scan", type=int, default=0, help="index of the scan to start at (folders)")
    parser.add_argument("--instances", action="store_true",
                        help="--png: colour each instance (upper 16 bits of the .label: --pred if given, else --labels) "
                        "with its own colour, stuff classes grey")
    parser.add_argument("--backend", choices=("auto", "open3d", "numpy"), default="auto",
                        help="--png renderer: Open3D offscreen, the numpy splat, or auto (Open3D, numpy if it fails)")


def run(args) -> int:
    from pcseg.errors import PcsegValueError
    from pcseg.io import LabelMap
    from pcseg.viz.scans import find_scans

    background = _color(args.background)
    scans = find_scans(args.path, args.labels, args.pred, args.label_ids, args.pred_ids)
    has_ids = any(s.labels is not None or s.pred is not None for s in scans)
    las = any(Path(s.points).suffix.lower() in (".las", ".laz") for s in scans)
    if args.label_map:
        label_map = LabelMap.load(args.label_map)
    elif las:  # LAS classification holds ASPRS codes
        label_map = LabelMap.builtin("asprs")
    else:
        label_map = LabelMap.builtin("semantickitti") if has_ids else None
    if not 0 <= args.scan < len(scans):
        raise PcsegValueError(f"--scan {args.scan} is outside 0..{len(scans) - 1} ({len(scans)} scans in {args.path})")
    if args.instances and args.png is None:
        raise PcsegValueError("--instances renders to --png (the window shows classes)")
    if args.instances and args.mode is not None:
        raise PcsegValueError("--instances chooses the colours itself: leave out --mode")
    if args.html is not None:
        if args.png is not None:
            raise PcsegValueError("give --png or --html, not both")
        from pcseg.viz.html import write_html

        scan = scans[args.scan]
        cloud, labels, pred = scan.load(label_map)
        path = write_html(args.html, cloud, labels, pred, label_map=label_map, title=scan.name,
                          point_size=args.point_size * 0.75)
        print(f"wrote {path}", file=sys.stderr)
        return 0
    if args.png is None:
        if args.mode == "compare":
            raise PcsegValueError("--mode compare is for --png; in the window switch modes with the actions")
        from pcseg.viz.window import show

        show(scans=scans, label_map=label_map, start=args.scan, mode=args.mode, point_size=args.point_size,
             background=background, width=args.width and max(args.width, 640),
             height=args.height and max(args.height, 480))
        return 0

    args.width, args.height = args.width or 960, args.height or 600
    out = Path(args.png)
    many = Path(args.path).is_dir() and out.suffix.lower() != ".png"
    targets = scans if many else [scans[args.scan]]
    for scan in targets:
        path = out / f"{scan.name}.png" if many or out.is_dir() else out
        _render_scan(scan, label_map, args, background, path)
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _render_instances(scan, label_map, args, background, path) -> None:
    from pcseg.errors import PcsegValueError
    from pcseg.io import read_labels, read_points
    from pcseg.metrics import thing_classes
    from pcseg.viz import save_png
    from pcseg.viz.instances import render_instances

    source, kind = (scan.pred, scan.pred_ids) if scan.pred is not None else (scan.labels, scan.label_ids)
    if source is None or source.suffix.lower() != ".label":
        raise PcsegValueError(f"--instances needs a .label file with instance ids (--pred or --labels) for {scan.name}")
    cloud = read_points(scan.points)
    semantic, instance = read_labels(source, return_instance=True, num_points=len(cloud))
    semantic = label_map.to_train(semantic) if kind == "raw" else semantic
    things = thing_classes(label_map)
    if not things:
        raise PcsegValueError(f"--instances: label map {label_map.name} names none of the SemanticKITTI thing classes")
    image = render_instances(cloud, semantic, instance, things, ignore_index=label_map.ignore_index, view=args.view,
                             width=args.width, height=args.height, point_size=args.point_size, background=background,
                             caption=scan.name, backend=args.backend)
    save_png(image, path)


def _render_scan(scan, label_map, args, background, path) -> None:
    from pcseg.viz import render, render_comparison, save_png

    if args.instances:
        return _render_instances(scan, label_map, args, background, path)

    cloud, labels, pred = scan.load(label_map)
    mode = args.mode or ("compare" if labels is not None and pred is not None else None)
    common = dict(label_map=label_map, view=args.view, point_size=args.point_size, background=background,
                  backend=args.backend, caption=scan.name)
    if mode == "compare":
        image = render_comparison(cloud, labels, pred, panel_width=args.width, panel_height=args.height, **common)
    else:
        image = render(cloud, labels, pred, mode=mode, width=args.width, height=args.height, **common)
    save_png(image, path)
