"""``pcseg segment --checkpoint CKPT INPUT... --out DIR [--format label|npy|ply]``.

Formats: ``label`` = SemanticKITTI uint32 ``.label`` with raw ids (what the official tools
read); ``npy`` = int64 (N,) train ids; ``ply`` = the scan's points coloured by class, with a
``label`` field holding raw ids (written by :func:`pcseg.io.write_points`). Inputs are point files or directories (searched for point files, not recursively).
Each output is written atomically: a failure on one scan leaves earlier outputs intact.
"""

from __future__ import annotations

from pathlib import Path

POINT_SUFFIXES = (".bin", ".npy", ".npz", ".ply", ".pcd", ".las", ".laz", ".h5", ".hdf5", ".txt", ".xyz", ".pts")


def add_arguments(parser) -> None:
    from pcseg.threads import add_threads_argument

    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="point files or directories")
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by pcseg train (.pt)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--format", default="label", choices=["label", "npy", "ply"])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--tta", type=int, default=0, help="test-time augmentation: number of rotations (0 = off)")
    parser.add_argument("--max-points", type=int, default=400_000, help="chunk clouds larger than this")
    add_threads_argument(parser)


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


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from pcseg.engine.segmenter import Segmenter
    from pcseg.io import read_points, write_labels, write_points

    from pcseg.threads import parse_threads

    threads = parse_threads(args.threads, "--threads")
    files = input_files(args.inputs)
    seg = Segmenter.from_checkpoint(args.checkpoint, device=args.device, tta=args.tta, max_points=args.max_points,
                                    threads=threads)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in tqdm(files, desc="segment", unit="scan", dynamic_ncols=True):
        cloud = read_points(path)
        labels = seg(cloud)
        if args.format == "label":
            write_labels(out_dir / f"{path.stem}.label", seg.label_map.to_raw(labels))
        elif args.format == "npy":
            write_labels(out_dir / f"{path.stem}.npy", labels)
        else:
            write_points(out_dir / f"{path.stem}.ply", cloud, labels=seg.label_map.to_raw(labels), label_map=seg.label_map)
        counts = np.bincount(labels, minlength=seg.num_classes)
        top = ", ".join(f"{seg.class_names[c]} {counts[c] / len(labels) * 100:.0f}%" for c in np.argsort(-counts)[:3])
        tqdm.write(f"{path.name}: {len(labels)} points ({top})")
    print(f"wrote {len(files)} {args.format} file(s) to {out_dir}")
    return 0

