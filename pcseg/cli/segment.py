"""``pcseg segment --checkpoint CKPT INPUT... --out DIR [--format label|npy|ply|las|laz|png] [--panoptic]``.

Formats: ``label`` = SemanticKITTI uint32 ``.label`` with raw ids (what the official tools
read; with ``--panoptic`` the upper 16 bits hold predicted instance ids); ``npy`` = int64 (N,)
train ids; ``ply`` = the scan's points coloured by class, with a ``label`` field holding raw ids
(written by :func:`pcseg.io.write_points`); ``las``/``laz`` (LAS/LAZ inputs only) = a copy of
each input tile with ``classification`` set to the predicted raw ids (ASPRS codes) and
everything else kept, streamed in chunks so tiles of any size fit in memory
(:func:`pcseg.engine.las_stream.segment_las`); ``--probability`` adds an extra-bytes dimension.
``png`` (depth images, ``.png``/``.pgm`` with ``--intrinsics``) = a label image
``<stem>_labels.png`` of the depth image's size holding each pixel's predicted class (raw ids of
the label map by default, ``--png-ids train`` for train id + 1; 0 = no valid depth; uint8 when
every id fits, else uint16) and a colour overlay ``<stem>_overlay.png``.
Inputs are point files, depth images or directories (searched for such files, not recursively).
Each output is written atomically: a failure or an interruption on one scan leaves earlier outputs
whole, and a re-run skips outputs that already exist (``--overwrite`` redoes them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

POINT_SUFFIXES = (".bin", ".npy", ".npz", ".ply", ".pcd", ".las", ".laz", ".h5", ".hdf5", ".txt", ".xyz", ".pts")
DEPTH_SUFFIXES = (".png", ".pgm")


def add_arguments(parser) -> None:
    from pcseg.threads import add_threads_argument

    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="point files, depth images (.png/.pgm, with --intrinsics) or directories")
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by pcseg train (.pt)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--format", default="label", choices=["label", "npy", "ply", "las", "laz", "png"],
                        help="las/laz: a classified copy of each LAS/LAZ input; png: a label image and a colour "
                        "overlay of each depth image")
    depth = parser.add_argument_group("depth images")
    depth.add_argument("--intrinsics", help="camera of the depth images: Open3D camera JSON, or fx,fy,cx,cy")
    depth.add_argument("--depth-scale", type=float, default=1000.0,
                       help="raw depth units per metre (default 1000; TUM RGB-D: 5000)")
    depth.add_argument("--max-depth", type=float, default=None, help="ignore depth beyond this many metres")
    depth.add_argument("--color", action="append", metavar="RGB", default=None,
                       help="8-bit colour image of the same size as the depth image (gives the points' rgb and "
                       "the overlay's background); repeat it once per depth image, in input order")
    depth.add_argument("--png-ids", choices=("raw", "train"), default="raw",
                       help="--format png: pixels hold the label map's raw ids (default; NYU40 ids for scannet) "
                       "or train id + 1; 0 is always a pixel without valid depth")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--tta", type=int, default=0, help="test-time augmentation: number of rotations (0 = off)")
    parser.add_argument("--max-points", type=int, default=400_000, help="chunk clouds larger than this")
    parser.add_argument("--margin", type=float, default=None,
                        help="context in metres around each chunk or tile (default: 2, or the checkpoint's)")
    parser.add_argument("--probability", action="store_true",
                        help="las/laz: add an extra-bytes dimension 'probability' (float32) of the predicted class")
    parser.add_argument("--chunk-points", type=int, default=1_000_000,
                        help="las/laz: points read and written per chunk (memory bound)")
    parser.add_argument("--panoptic", action="store_true",
                        help="also predict instances (a checkpoint with an instance head, e.g. PanopticMinkUNet): "
                        ".label files get instance ids in the upper 16 bits (--format label only)")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo outputs that already exist (by default a re-run skips them)")
    add_threads_argument(parser)


def input_files(inputs, suffixes=POINT_SUFFIXES) -> list[Path]:
    from pcseg.errors import PcsegFileNotFoundError, PcsegValueError

    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes and p.is_file())
            if not found:
                raise PcsegValueError(f"input directory {path} holds no input files ({', '.join(suffixes)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise PcsegFileNotFoundError(f"input not found: {path}")
    return files


def output_paths(files, out_dir: Path, fmt: str) -> list[Path]:
    """One output per input, ``<out>/<stem>.<fmt>`` (``<stem>_labels.png`` for png); two inputs with
    one name, or an output that is an input file, are refused up front (it would be overwritten)."""
    from pcseg.errors import PcsegValueError

    outputs, seen = [], {}
    inputs = {f.resolve() for f in files}
    for path in files:
        out = out_dir / (f"{path.stem}_labels.png" if fmt == "png" else f"{path.stem}.{fmt}")
        if out.resolve() in inputs:
            raise PcsegValueError(f"output {out} (of {path}) would overwrite an input file; choose another --out")
        if out in seen:
            raise PcsegValueError(f"inputs {seen[out]} and {path} would both be written to {out}; "
                                  "segment them into different --out folders")
        seen[out] = path
        outputs.append(out)
    return outputs


def run(args) -> int:
    import signal
    import sys

    import numpy as np
    from tqdm import tqdm

    from pcseg.engine.segmenter import Segmenter
    from pcseg.errors import PcsegValueError
    from pcseg.io import read_depth, read_points, write_labels, write_points

    from pcseg.threads import parse_threads

    threads = parse_threads(args.threads, "--threads")
    if args.panoptic and args.format != "label":
        raise PcsegValueError(f"--panoptic writes .label files (instance ids in the upper 16 bits): "
                              f"--format must be label, got {args.format}")
    depth_options = _depth_options(args)
    # folders are searched for depth images only when they are asked for (--format png or --intrinsics)
    suffixes = DEPTH_SUFFIXES if args.format == "png" else POINT_SUFFIXES + (DEPTH_SUFFIXES if depth_options else ())
    files = input_files(args.inputs, suffixes)
    colors = _color_images(args, files)
    if args.format == "png":
        wrong = [str(p) for p in files if p.suffix.lower() not in DEPTH_SUFFIXES]
        if wrong:
            raise PcsegValueError(f"--format png labels the pixels of depth images (.png/.pgm); "
                                  f"not depth images: {', '.join(wrong[:5])}")
    if any(p.suffix.lower() in DEPTH_SUFFIXES for p in files) and depth_options is None:
        raise PcsegValueError("depth images need --intrinsics (Open3D camera JSON or fx,fy,cx,cy) and --depth-scale")
    if args.format in ("las", "laz"):
        wrong = [str(p) for p in files if p.suffix.lower() not in (".las", ".laz")]
        if wrong:
            raise PcsegValueError(f"--format {args.format} writes classified copies of LAS/LAZ inputs; "
                                  f"not LAS/LAZ: {', '.join(wrong[:5])}")
    out_dir = Path(args.out)
    outputs = output_paths(files, out_dir, args.format)
    todo = [(src, dst) for src, dst in zip(files, outputs) if args.overwrite or not dst.exists()]
    skipped = len(files) - len(todo)
    if not todo:
        print(f"all {len(files)} output(s) already exist in {out_dir}; nothing to do (--overwrite to redo them)")
        return 0
    options = {"device": args.device, "tta": args.tta, "max_points": args.max_points, "threads": threads}
    if args.margin is not None:
        options["chunk_margin"] = args.margin
    seg = Segmenter.from_checkpoint(args.checkpoint, **options)
    if args.format == "png":
        png_ids = _png_ids(seg, args.png_ids)
    if args.panoptic and not seg.is_panoptic:
        raise PcsegValueError(f"--panoptic: checkpoint {args.checkpoint} has no instance head "
                              f"({type(seg.model).__name__}); train e.g. configs/synthetic_panoptic.yaml")
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.format in ("las", "laz"):
        return _run_las(seg, todo, args)
    for stale in out_dir.glob(f".*.tmp.{args.format}"):  # temp files of a run killed mid-write
        stale.unlink(missing_ok=True)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM too: whole files and one line
    done = 0
    try:
        for path, out in tqdm(todo, desc="segment", unit="scan", dynamic_ncols=True):
            if path.suffix.lower() in DEPTH_SUFFIXES:
                cloud = read_depth(path, color_path=colors.get(path), **depth_options)
            else:
                cloud = read_points(path)
            # every writer is atomic: an interrupted run leaves whole files only, and a re-run skips them
            if args.panoptic:
                labels, instance = seg.panoptic(cloud)
                if int(instance.max(initial=0)) > 0xFFFF:
                    raise PcsegValueError(f"{path}: {int(instance.max())} instances do not fit the 16 bits of a .label file")
                write_labels(out, seg.label_map.to_raw(labels), instance)
                done += 1
                tqdm.write(f"{path.name}: {len(labels)} points, {int(instance.max(initial=0))} instances")
                continue
            labels = seg(cloud)
            if args.format == "label":
                write_labels(out, seg.label_map.to_raw(labels))
            elif args.format == "npy":
                write_labels(out, labels)
            elif args.format == "png":
                _write_png(out, path, cloud, labels, seg, png_ids, colors.get(path))
            else:
                write_points(out, cloud, labels=seg.label_map.to_raw(labels), label_map=seg.label_map)
            done += 1
            counts = np.bincount(labels, minlength=seg.num_classes)
            top = ", ".join(f"{seg.class_names[c]} {counts[c] / len(labels) * 100:.0f}%"
                            for c in np.argsort(-counts)[:3])
            tqdm.write(f"{path.name}: {len(labels)} points ({top})")
    except KeyboardInterrupt:
        print(f"\npcseg segment: interrupted; {done} of {len(todo)} output(s) written whole to {out_dir}; "
              "the same command continues (existing outputs are skipped)", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    note = f"; skipped {skipped} that already existed (--overwrite to redo them)" if skipped else ""
    what = "label image(s) and overlay(s)" if args.format == "png" else f"{args.format} file(s)"
    print(f"wrote {len(todo)} {what} to {out_dir}{note}")
    return 0


def _depth_options(args) -> dict | None:
    """read_depth's keyword arguments from the depth options, or None without --intrinsics."""
    from pcseg.cli.info import _intrinsics

    if args.intrinsics is None:
        return None
    return {"intrinsics": _intrinsics(args.intrinsics), "depth_scale": args.depth_scale,
            "max_depth": args.max_depth}


def _color_images(args, files) -> dict:
    """{depth image: its colour image} from --color (one per depth image, in input order)."""
    from pcseg.errors import PcsegValueError

    if not args.color:
        return {}
    depth = [p for p in files if p.suffix.lower() in DEPTH_SUFFIXES]
    if len(args.color) != len(depth):
        raise PcsegValueError(f"--color: {len(args.color)} colour image(s) for {len(depth)} depth image(s); "
                              "give one per depth image, in the same order")
    return {d: Path(c) for d, c in zip(depth, args.color)}


def _png_ids(seg, kind: str) -> tuple[np.ndarray, type]:
    """(value of each train id in the label image, PNG dtype) for ``--png-ids raw|train``."""
    from pcseg.errors import PcsegValueError

    lm = seg.label_map
    train = np.arange(lm.num_classes)
    if kind == "train":
        values = train + 1
    else:
        values = lm.to_raw(train)
        clash = [lm.class_names[t] for t in train if values[t] == 0 and t not in lm.ignore_index]
        if clash:
            raise PcsegValueError(f"--format png: label map {lm.name} gives class {clash[0]!r} raw id 0, which the "
                                  "label image keeps for pixels without depth; pass --png-ids train (train id + 1)")
    return values, (np.uint8 if values.max() <= 255 else np.uint16)


def _write_png(out: Path, depth_path: Path, cloud, labels, seg, png_ids, color_path) -> None:
    """``<stem>_labels.png`` (ids per pixel, 0 = no depth) and ``<stem>_overlay.png``."""
    from pcseg.io.depth import _read_color_image, _read_depth_image
    from pcseg.io.depth_labels import (depth_preview, label_overlay, labels_to_image, write_label_png,
                                       write_rgb_png)

    values, dtype = png_ids
    depth = _read_depth_image(depth_path)
    base = _read_color_image(color_path) if color_path is not None else depth_preview(depth)
    train_image = labels_to_image(cloud.pixels, labels, depth.shape, fill=-1)
    overlay = out.with_name(out.name[: -len("_labels.png")] + "_overlay.png")
    # the overlay first: a label image on disk (what a re-run checks) means both are written
    write_rgb_png(overlay, label_overlay(train_image, seg.label_map.colors, base, fill=-1))
    write_label_png(out, labels_to_image(cloud.pixels, values[labels], depth.shape), dtype=dtype)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _run_las(seg, todo, args) -> int:
    from pcseg.engine.las_stream import segment_las

    for path, out in todo:
        stats = segment_las(seg, path, out, chunk_points=args.chunk_points, probability=args.probability)
        names = {int(seg.label_map.to_raw(np.array([c]))[0]): seg.class_names[c] for c in range(seg.num_classes)}
        total = stats["points"]
        top = sorted(stats["class_counts"].items(), key=lambda kv: -kv[1])[:3]
        shares = ", ".join(f"{names.get(code, code)} {n / total * 100:.0f}%" for code, n in top)
        print(f"{path.name} -> {out}: {total} points in {stats['tiles']} tile(s), "
              f"{stats['points_per_second']:,.0f} points/s ({shares})")
    print(f"wrote {len(todo)} {args.format} file(s) to {args.out}")
    return 0
