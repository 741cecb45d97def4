"""``pcseg synth``: write a synthetic LiDAR dataset (SemanticKITTI layout) or RGB-D frames."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output folder (dataset root)")
    parser.add_argument("--sequences", nargs="+", default=["00"], help="sequence names (default: 00)")
    parser.add_argument("--scans", type=int, default=10, help="scans (or RGB-D frames) per sequence (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="master seed; the same seed writes identical files")
    parser.add_argument("--sensor", default="hdl64", choices=["hdl64", "vlp32", "vlp16", "rgbd", "airborne"],
                        help="LiDAR preset, rgbd for indoor depth-camera frames, or airborne for LAZ tiles "
                        "OUT/<sequence>_<scan>.laz with ASPRS classes (default: hdl64)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from pcseg.errors import PcsegValueError

    if args.scans < 1:
        raise PcsegValueError(f"--scans must be >= 1, got {args.scans}")
    if args.sensor == "airborne":
        from pcseg.synth.airborne import write_airborne_tiles

        names = [f"{seq}_{i:06d}" for seq in args.sequences for i in range(args.scans)]
        write_airborne_tiles(args.out, names, seed=args.seed)
        out = args.out
    elif args.sensor == "rgbd":
        from pcseg.synth.indoor_writer import write_depth_dataset

        out = write_depth_dataset(args.out, scenes=args.sequences, frames_per_scene=args.scans, seed=args.seed,
                                  progress=not args.no_progress)
    else:
        from pcseg.synth.writer import write_dataset

        out = write_dataset(args.out, sequences=args.sequences, scans_per_sequence=args.scans, seed=args.seed,
                            sensor=args.sensor, progress=not args.no_progress)
    print(f"wrote {len(args.sequences)} x {args.scans} {args.sensor} frames under {out}")
    return 0
