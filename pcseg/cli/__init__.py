"""``pcseg <verb>``: a thin command line over the library.

Each verb lives in its own module ``pcseg.cli.<verb>`` with two functions,
``add_arguments(parser)`` and ``run(args) -> int``. The table below is the only registry: a verb's
module is imported only when that verb runs, so ``pcseg --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pcseg.errors import PcsegError

# verb -> (module, one-line help). Order is the order `pcseg --help` lists them.
VERBS: dict[str, tuple[str, str]] = {
    "demo": ("pcseg.cli.demo", "segment synthetic (or given) scans with a bundled model, score and render them"),
    "info": ("pcseg.cli.info", "print a point cloud's size, bounds, fields and label histogram"),
    "synth": ("pcseg.cli.synth", "generate a synthetic LiDAR dataset in the SemanticKITTI layout"),
    "train": ("pcseg.cli.train", "train a model from a YAML config"),
    "eval": ("pcseg.cli.eval", "evaluate a checkpoint on a config's validation split"),
    "segment": ("pcseg.cli.segment", "label scans with a checkpoint and write labels / PLYs"),
    "score": ("pcseg.cli.score", "score predicted label files against ground truth (mIoU and more)"),
    "view": ("pcseg.cli.view", "show a labeled cloud in a window, or render it to PNG"),
}


def build_parser() -> argparse.ArgumentParser:
    from pcseg import __version__

    parser = argparse.ArgumentParser(prog="pcseg", description="3D point-cloud semantic segmentation.")
    parser.add_argument("--version", action="version", version=f"pcseg {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    for verb, (module_name, help_text) in VERBS.items():
        sub.add_parser(verb, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in VERBS:
        # top-level help, --version, or an unknown verb (argparse reports it)
        args = parser.parse_args(argv)
        if args.verb is None:
            parser.print_help()
        return 0
    verb = argv[0]
    from pcseg.threads import prefer_passive_waiting

    prefer_passive_waiting()  # before torch loads: OpenMP reads it once
    module_name, help_text = VERBS[verb]
    module = importlib.import_module(module_name)
    verb_parser = argparse.ArgumentParser(prog=f"pcseg {verb}", description=help_text)
    module.add_arguments(verb_parser)
    args = verb_parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except PcsegError as exc:
        print(f"pcseg {verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # train and segment handle Ctrl-C themselves (checkpoint, whole outputs); elsewhere one line
        print(f"\npcseg {verb}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into `head` and closed early: not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
