"""``pcseg train CONFIG [--resume] [--set key=value ...]``: train a model from a YAML config.

Multi-process: ``torchrun --nproc_per_node=N -m pcseg train CONFIG`` (gloo on CPU, NCCL on GPU).
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
    from pcseg.engine.config import load_config
    from pcseg.engine.trainer import Trainer

    overrides = list(args.overrides)
    if args.threads is not None:
        overrides.append(f"train.threads={args.threads}")
    config = load_config(args.config, overrides)
    trainer = Trainer(config)
    trainer.log(f"training {config['model']['name']} on {config['dataset']['name']} "
                f"({len(trainer.train_set)} train scans, {trainer.world} process(es), {trainer.device}); "
                f"output in {trainer.out_dir}")
    metrics = trainer.fit(resume=args.resume)
    if metrics:
        trainer.log(f"last evaluation: mIoU {metrics['miou'] * 100:.2f}% (epoch {metrics['epoch']}); "
                    f"best {trainer.best_miou * 100:.2f}%")
    return 0
