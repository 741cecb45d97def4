"""``pcseg eval CONFIG --checkpoint CKPT``: per-class table on a split, and a JSON metrics report;
``--panoptic``: also panoptic quality for a model with an instance head."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("config", help="experiment YAML naming the dataset and split")
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by pcseg train (.pt)")
    parser.add_argument("--split", default="val", choices=["val", "test", "train"], help="split to evaluate")
    parser.add_argument("--out", default=None, help="metrics JSON path (default: <checkpoint>.<split>.json)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set dataset.root=/data/kitti")
    parser.add_argument("--panoptic", action="store_true",
                        help="also score panoptic quality (PQ/SQ/RQ; a checkpoint with an instance head)")
    from pcseg.threads import add_threads_argument

    add_threads_argument(parser)


def run(args) -> int:
    import json
    from pathlib import Path

    import torch

    from pcseg.engine.builders import build_dataset
    from pcseg.engine.checkpoint import load_checkpoint, model_from_checkpoint
    from pcseg.engine.config import load_config
    from pcseg.engine.trainer import evaluate_model
    from pcseg.errors import CheckpointError, PcsegValueError

    from pcseg.threads import parse_threads

    threads = parse_threads(args.threads, "--threads")
    config = load_config(args.config, args.overrides)
    payload = load_checkpoint(args.checkpoint)
    model, label_map = model_from_checkpoint(payload, source=args.checkpoint)
    if config["dataset"]["features"] != payload["config"]["dataset"]["features"]:
        raise CheckpointError(f"checkpoint {args.checkpoint} was trained with features "
                              f"{payload['config']['dataset']['features']} but the config gives {config['dataset']['features']}")
    from pcseg.engine.builders import build_label_map

    if build_label_map(config["dataset"]) != label_map:
        raise CheckpointError(f"checkpoint {args.checkpoint} was trained with label map {label_map.name} "
                              f"({label_map.num_classes} classes) but the config names {config['dataset']['label_map']!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise PcsegValueError(f"--device {args.device}: CUDA is not available")
    device = torch.device(args.device)
    if args.panoptic:
        from pcseg.engine.panoptic import require_panoptic

        require_panoptic(model, f"--panoptic: checkpoint {args.checkpoint}")
    dataset = build_dataset(config, args.split, label_map, training=False)
    trained = payload["config"]["dataset"]
    cm = evaluate_model(model.to(device), dataset, label_map, device, progress=True,
                        num_points=trained["num_points"], block_size=trained.get("block_size"), threads=threads)
    print(f"{config['dataset']['name']} {args.split} split ({len(dataset)} scans), checkpoint {args.checkpoint}")
    print(cm.table())
    print(f"mIoU {cm.miou() * 100:.2f}%   accuracy {cm.accuracy() * 100:.2f}%")
    out = Path(args.out) if args.out else Path(f"{args.checkpoint}.{args.split}.json")
    report = {"checkpoint": str(args.checkpoint), "config": str(args.config), "split": args.split,
              "scans": len(dataset), "metrics": cm.to_dict()}
    if args.panoptic:
        from pcseg.engine.panoptic import evaluate_panoptic

        pq = evaluate_panoptic(model, dataset, label_map, device, progress=True)
        print(pq.table())
        report["panoptic"] = pq.to_dict()
    from pcseg.atomic import atomic_write_bytes

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, json.dumps(report, indent=2).encode())
    print(f"wrote {out}")
    return 0
