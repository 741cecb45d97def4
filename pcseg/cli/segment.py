"""``pcseg segment --checkpoint CKPT INPUT... --out DIR [--format label|npy|ply]``.

Formats: ``label`` = SemanticKITTI uint32 ``.label`` with raw ids (what the official tools
read); ``npy`` = int64 (N,) train ids; ``ply`` = the scan's points coloured by class, with a
``label`` field holding raw ids (written by :func:`pcseg.io.write_points`). Inputs are point files or directories (searched for point files, not recursively).
Each output is written atomically: a failure or an interruption on one scan leaves earlier outputs
whole, and a re-run skips outputs that already exist (``--overwrite`` redoes them).
"""

from __future__ import annotations

from pathlib import Path

POINT_SUFFIXES = (".bin", ".npy", ".npz", ".ply", ".pcd", ".las", ".laz", ".h5", ".hdf5", ".txt", ".xyz", ".pts")


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="point files or directories")
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by pcseg train (.pt)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--format", default="label", choices=["label", "npy", "ply"])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--tta", type=int, default=0, help="test-time augmentation: number of rotations (0 = off)")
    parser.add_argument("--max-points", type=int, default=400_000, help="chunk clouds larger than this")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo outputs that already exist (by default a re-run skips them)")


def input_files(inputs) -> list[Path]:
    from pcseg.errors import PcsegFileNotFoundError, PcsegValueError

    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in POINT_SUFFIXES and p.is_file())
            if not found:
                raise PcsegValueError(f"input directory {path} holds no point files ({', '.join(POINT_SUFFIXES)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise PcsegFileNotFoundError(f"input not found: {path}")
    return files


def output_paths(files, out_dir: Path, fmt: str) -> list[Path]:
    """One output per input, ``<out>/<stem>.<fmt>``; two inputs with one name are refused up front
    (one would silently overwrite the other)."""
    from pcseg.errors import PcsegValueError

    outputs, seen = [], {}
    for path in files:
        out = out_dir / f"{path.stem}.{fmt}"
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
    from pcseg.io import read_points, write_labels, write_points

    files = input_files(args.inputs)
    out_dir = Path(args.out)
    outputs = output_paths(files, out_dir, args.format)
    todo = [(src, dst) for src, dst in zip(files, outputs) if args.overwrite or not dst.exists()]
    skipped = len(files) - len(todo)
    if not todo:
        print(f"all {len(files)} output(s) already exist in {out_dir}; nothing to do (--overwrite to redo them)")
        return 0
    seg = Segmenter.from_checkpoint(args.checkpoint, device=args.device, tta=args.tta, max_points=args.max_points)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f".*.tmp.{args.format}"):  # temp files of a run killed mid-write
        stale.unlink(missing_ok=True)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM too: whole files and one line
    done = 0
    try:
        for path, out in tqdm(todo, desc="segment", unit="scan", dynamic_ncols=True):
            cloud = read_points(path)
            labels = seg(cloud)
            # every writer is atomic: an interrupted run leaves whole files only, and a re-run skips them
            if args.format == "label":
                write_labels(out, seg.label_map.to_raw(labels))
            elif args.format == "npy":
                write_labels(out, labels)
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
    print(f"wrote {len(todo)} {args.format} file(s) to {out_dir}{note}")
    return 0


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
