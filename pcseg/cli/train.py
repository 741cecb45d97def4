"""``pcseg train CONFIG [--resume] [--set key=value ...]``: train a model from a YAML config.

Multi-process: ``torchrun --nproc_per_node=N -m pcseg train CONFIG`` (gloo on CPU, NCCL on GPU).

Ctrl-C (SIGINT) or SIGTERM writes ``last.pt`` at the exact step reached and exits (status 130 /
143) with one line saying where it is; ``--resume`` continues bit-exactly. A second signal exits
at once, keeping the previous checkpoint.
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("config", help="experiment YAML (configs/*.yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from <train.out_dir>/last.pt")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.lr=0.01 (repeatable)")
    parser.add_argument("--threads", default=None, metavar="N|auto",
                        help="CPU threads for torch, overriding train.threads (default: the config's, "
                             "whose default is auto = the cores other processes leave free, re-checked each step)")


def run(args) -> int:
    import shlex
    import sys

    from pcseg.engine.config import load_config
    from pcseg.engine.interrupt import GracefulStop, TrainingInterrupted
    from pcseg.engine.trainer import Trainer

    overrides = list(args.overrides)
    if args.threads is not None:
        overrides.append(f"train.threads={args.threads}")
    with GracefulStop() as stop:
        try:
            config = load_config(args.config, overrides)
            trainer = _build_trainer(Trainer, config, args.config)
            if stop.requested:
                raise TrainingInterrupted(stop.signum)
            trainer.log(f"training {config['model']['name']} on {config['dataset']['name']} "
                        f"({len(trainer.train_set)} train scans, {trainer.world} process(es), {trainer.device}); "
                        f"output in {trainer.out_dir}")
            metrics = trainer.fit(resume=args.resume, stop=stop)
        except TrainingInterrupted as exc:
            if exc.checkpoint is not None:
                words = ["pcseg", "train", args.config, *[w for o in overrides for w in ("--set", o)], "--resume"]
                again = " ".join(shlex.quote(w) for w in words)
                print(f"pcseg train: {exc}; `{again}` continues bit-exactly from there", file=sys.stderr)
            else:
                print(f"pcseg train: {exc}", file=sys.stderr)
            return 128 + exc.signum
    if metrics:
        trainer.log(f"last evaluation: mIoU {metrics['miou'] * 100:.2f}% (epoch {metrics['epoch']}); "
                    f"best {trainer.best_miou * 100:.2f}%")
    return 0


def _build_trainer(trainer_class, config, source):
    """The trainer; a config mistake found while building it (a model argument, a feature the
    data lacks) names the config file, as load_config's own errors do."""
    from pcseg.errors import ConfigError

    try:
        return trainer_class(config)
    except ConfigError as exc:
        if str(source) in str(exc):
            raise
        raise ConfigError(f"config {source}: {exc}") from None
