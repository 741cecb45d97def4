"""``pcseg demo``: segment synthetic (or given) scans with a bundled model, score and render them."""

from __future__ import annotations


def add_arguments(parser):
    from pcseg.pretrained import bundled_for

    parser.add_argument("--out", default="pcseg_demo", help="output folder (default: %(default)s)")
    parser.add_argument("--input", nargs="+", default=[], metavar="FILE",
                        help="scans to segment instead of synthetic ones (e.g. a SemanticKITTI .bin)")
    parser.add_argument("--labels", nargs="+", default=[], metavar="FILE",
                        help="ground truth for --input, one per file (found automatically in the SemanticKITTI layout)")
    parser.add_argument("--model", default="outdoor", choices=bundled_for("street"),
                        help="bundled model (default: %(default)s, trained on real and generated street scans)")
    parser.add_argument("--scans", type=int, default=2, help="synthetic scans to generate (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--no-render", action="store_true", help="skip the PNG renders")
    from pcseg.threads import add_threads_argument

    add_threads_argument(parser)
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--view", dest="view", action="store_true", default=None, help="open the viewer")
    view.add_argument("--no-view", dest="view", action="store_false", help="never open the viewer")


def run(args) -> int:
    from pcseg.demo import run_demo
    from pcseg.threads import parse_threads

    threads = parse_threads(args.threads, "--threads")

    if args.scans < 1:
        from pcseg.errors import PcsegValueError

        raise PcsegValueError(f"--scans must be at least 1, got {args.scans}")
    run_demo(
        out_dir=args.out,
        inputs=args.input,
        labels=args.labels,
        model=args.model,
        num_scans=args.scans,
        device=args.device,
        render=not args.no_render,
        view=args.view,
        threads=threads,
    )
    return 0
