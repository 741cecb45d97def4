"""Experiment configs: flat YAML with ``dataset``, ``model`` and ``train`` sections.

A config is plain data. Every key a section accepts, with its default, is listed in
:data:`DEFAULTS`; a key that is not listed is a :class:`ConfigError` naming its path
(``train.lrr``), so a typo never silently falls back to a default. ``model`` is the exception:
apart from ``name`` its keys are the model class's constructor arguments, checked against that
constructor's signature when the model is built.

Overrides (``--set train.lr=0.01``) are parsed as YAML scalars/lists and applied before
validation, so they are checked exactly like keys written in the file.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from pcseg.errors import ConfigError
from pcseg.io._common import read_yaml_mapping

AUGMENT_DEFAULTS = {
    "rotate_z": False,  # random rotation about z, uniform in [0, 2 pi)
    "scale": None,  # [low, high] uniform isotropic scale factor, or null
    "flip": False,  # random mirror of x and/or y (each with probability 0.5)
    "jitter": 0.0,  # std of Gaussian noise added to xyz, metres (clipped at 3 std)
    "dropout": 0.0,  # fraction of points dropped at random
    "scan_mix": 0.0,  # probability of LaserMix-like mixing with another scan of the split
    "scan_mix_bands": 6,  # number of inclination bands the mix alternates between
    "polar_mix": 0.0,  # probability of PolarMix-like mixing: half a turn swapped in from another
    #                    scan of the split, plus that scan's `paste_classes` points at 3 bearings
    "paste_classes": [],  # train ids pasted by polar_mix (rare objects: people, poles, bikes...)
}

DEFAULTS = {
    "dataset": {
        "name": None,  # semantickitti | synthetic | s3dis | folder
        "root": None,  # dataset folder (synthetic: null = generate scans from seeds)
        "label_map": "semantickitti",  # built-in name or YAML path
        "train_split": None,  # kitti: sequences; s3dis: areas; folder: globs; synthetic: scan count
        "val_split": None,
        "test_split": None,
        "features": ["xyz", "intensity"],  # per-point input channels, in order
        "num_points": None,  # sample exactly this many points per training scan (PointNet++)
        "voxel_size": None,  # keep one random point per voxel of this size when training (m)
        "block_size": None,  # training samples are random square xy blocks of this edge (m), or null
        "max_eval_points": None,  # cap points per scan at evaluation (random subset), or null
        "sensor": "hdl64",  # synthetic scans: simulated sensor
        "seed": 0,  # synthetic scans: base seed
        "label_replace": None,  # folder: [from, to] substring turning a points path into its labels path
        "labels_are_train_ids": False,  # folder: label files already hold train ids
        "num_workers": 0,  # DataLoader worker processes
        "repeat": 1,  # training split: each scan appears this many times per epoch
        "synthetic_scans": 0,  # training split: add this many generated scans (pcseg.synth, `sensor`)
        "synthetic_seed": 0,  # seed of the first added synthetic scan
        "augment": AUGMENT_DEFAULTS,
    },
    "model": {"name": None},
    "train": {
        "epochs": 10,
        "batch_size": 2,  # scans per step per process
        "val_batch_size": 1,
        "optimizer": "adamw",  # adamw | sgd
        "lr": 0.001,
        "weight_decay": 0.0001,
        "momentum": 0.9,  # sgd only
        "scheduler": "cosine",  # cosine | onecycle | none
        "grad_clip": None,  # max gradient norm, or null
        "amp": "auto",  # auto (bf16 on GPU, off on CPU) | bf16 | fp16 | off
        "class_weights": "frequency",  # frequency | none
        "ce_weight": 1.0,
        "lovasz_weight": 1.0,
        "offset_weight": 1.0,  # L1 loss of predicted instance-centre offsets (models with an instance head)
        "eval_every": 1,  # epochs
        "checkpoint_every_steps": None,  # also write `last` every N steps (mid-epoch resume)
        "max_steps": None,  # stop after this many optimizer steps in total (writes `last`)
        "seed": 0,
        "device": "auto",  # auto | cpu | cuda
        "out_dir": "runs/experiment",
        "progress": True,  # tqdm bar
        "tensorboard": True,
        "sync_bn": False,  # convert BatchNorm to SyncBatchNorm under DDP
        "threads": "auto",  # torch threads: a count, or auto (= null): the free cores, re-checked as it runs
        "init_from": None,  # checkpoint whose model weights start this run (an earlier stage)
    },
}

DATASET_NAMES = ("semantickitti", "synthetic", "s3dis", "folder")


def load_config(path, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Read a YAML config, apply ``key.path=value`` overrides, validate and fill defaults.

    Returns a new nested dict with every section complete. Raises :class:`ConfigError`
    (unknown key, wrong type, bad override) or :class:`PcsegFileNotFoundError`.
    """
    path = Path(path)
    raw = read_yaml_mapping(path, "config")
    for item in overrides:
        apply_override(raw, item)
    return validate_config(raw, source=str(path))


def apply_override(config: dict, item: str) -> None:
    """Apply one ``section.key=value`` override in place (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key.path=value, e.g. train.lr=0.01")
    key, text = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if len(parts) < 2:
        raise ConfigError(f"override {item!r}: the key needs a section, e.g. train.lr")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from None
    node = config
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def validate_config(raw: dict, source: str = "<config>") -> dict:
    """Check ``raw`` against :data:`DEFAULTS`; return a complete deep copy with defaults filled."""
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"config {source}: unknown section {unknown[0]!r} (sections: dataset, model, train)")
    config = {}
    for section in ("dataset", "train"):
        config[section] = _merge(DEFAULTS[section], raw.get(section) or {}, section, source)
    model = raw.get("model")
    if not isinstance(model, dict) or not model.get("name"):
        raise ConfigError(f"config {source}: model.name is required (e.g. MinkUNet, PointNet2SSG)")
    config["model"] = copy.deepcopy(model)

    dataset, train = config["dataset"], config["train"]
    if dataset["name"] not in DATASET_NAMES:
        raise ConfigError(f"config {source}: dataset.name must be one of {list(DATASET_NAMES)}, got {dataset['name']!r}")
    _check_choice(train, "optimizer", ("adamw", "sgd"), source)
    _check_choice(train, "scheduler", ("cosine", "onecycle", "none"), source)
    _check_choice(train, "amp", ("auto", "bf16", "fp16", "off"), source)
    _check_choice(train, "class_weights", ("frequency", "none"), source)
    _check_choice(train, "device", ("auto", "cpu", "cuda"), source)
    for key in ("repeat",):
        if not isinstance(dataset[key], int) or isinstance(dataset[key], bool) or dataset[key] < 1:
            raise ConfigError(f"config {source}: dataset.{key} must be a positive integer, got {dataset[key]!r}")
    if not isinstance(dataset["synthetic_scans"], int) or dataset["synthetic_scans"] < 0:
        raise ConfigError(f"config {source}: dataset.synthetic_scans must be an integer >= 0, "
                          f"got {dataset['synthetic_scans']!r}")
    for key in ("epochs", "batch_size", "val_batch_size", "eval_every"):
        if not isinstance(train[key], int) or isinstance(train[key], bool) or train[key] < 1:
            raise ConfigError(f"config {source}: train.{key} must be a positive integer, got {train[key]!r}")
    for key in ("lr", "weight_decay", "momentum", "ce_weight", "lovasz_weight", "offset_weight"):
        if not isinstance(train[key], (int, float)) or isinstance(train[key], bool) or train[key] < 0:
            raise ConfigError(f"config {source}: train.{key} must be a non-negative number, got {train[key]!r}")
    from pcseg.errors import PcsegValueError
    from pcseg.threads import parse_threads

    try:
        parse_threads(train["threads"], "train.threads")
    except PcsegValueError as exc:
        raise ConfigError(f"config {source}: {exc}") from None
    features = dataset["features"]
    if not isinstance(features, list) or not features:
        raise ConfigError(f"config {source}: dataset.features must be a non-empty list, e.g. [xyz, intensity]")
    from pcseg.datasets.features import FEATURE_WIDTHS

    for name in features:
        if name not in FEATURE_WIDTHS:
            raise ConfigError(
                f"config {source}: dataset.features: unknown feature {name!r}; choose from {list(FEATURE_WIDTHS)}"
            )
    scale = dataset["augment"]["scale"]
    if scale is not None and (not isinstance(scale, list) or len(scale) != 2):
        raise ConfigError(f"config {source}: dataset.augment.scale must be [low, high] or null, got {scale!r}")
    return config


def _merge(defaults: dict, given: dict, where: str, source: str) -> dict:
    if not isinstance(given, dict):
        raise ConfigError(f"config {source}: {where} must be a mapping, got {type(given).__name__}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], list(defaults), n=1)
        hint = f" (did you mean {where}.{close[0]}?)" if close else ""
        raise ConfigError(f"config {source}: unknown key {where}.{unknown[0]}{hint}")
    out = {}
    for key, default in defaults.items():
        if isinstance(default, dict):
            out[key] = _merge(default, given.get(key) or {}, f"{where}.{key}", source)
        else:
            out[key] = copy.deepcopy(given.get(key, default))
    return out


def _check_choice(section: dict, key: str, choices, source: str) -> None:
    if section[key] not in choices:
        raise ConfigError(f"config {source}: train.{key} must be one of {list(choices)}, got {section[key]!r}")


def dump_config(config: dict) -> str:
    """The config as YAML text (what checkpoints and run folders keep)."""
    return yaml.safe_dump(config, sort_keys=False)
