"""Experiment configs: flat YAML with ``dataset``, ``model`` and ``train`` sections.

A config is plain data. Every shared key a section accepts, with its default, is listed in
:data:`DEFAULTS`; a key that is not listed is a :class:`ConfigError` naming its path
(``train.lrr``), so a typo never silently falls back to a default. Keys that belong to one class
are that class's constructor arguments, found by name in :mod:`pcseg.engine.registry`:

- ``model``: apart from ``name`` every key is a constructor argument of the model class,
  checked against its signature when the model is built;
- ``dataset``: the keys of :data:`DEFAULTS` are shared by every dataset; any other key must be
  a keyword argument of the dataset's constructor (``sensor`` and ``seed`` for ``synthetic``,
  ``label_replace`` for ``folder``), and its default is filled in from the signature;
- ``train.loss``: loss names (``[ce, lovasz]``) or ``{name: weight}`` / ``{name: {weight: w,
  <constructor argument>: value}}``; see :func:`loss_terms`.

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
    "tilt": 0.0,  # max degrees of a random rotation about a horizontal axis (sloped roads, tilted mounts)
    "scale": None,  # [low, high] uniform isotropic scale factor, or null
    "flip": False,  # random mirror of x and/or y (each with probability 0.5)
    "jitter": 0.0,  # std of Gaussian noise added to xyz, metres (clipped at 3 std)
    "dropout": 0.0,  # fraction of points dropped at random
    "scan_mix": 0.0,  # probability of LaserMix-like mixing with another scan of the split
    "scan_mix_bands": 6,  # number of inclination bands the mix alternates between
    "polar_mix": 0.0,  # probability of PolarMix-like mixing: half a turn swapped in from another
    #                    scan of the split, plus that scan's `paste_classes` points at 3 bearings
    "paste_classes": [],  # train ids pasted by polar_mix (rare objects: people, poles, bikes...)
    "color_jitter": 0.0,  # std of random log-gains of colour channels, contrast and offsets (rgb features)
    "color_drop": 0.0,  # probability a training scan's colours are all replaced by mid-grey (colour-free input)
}

DEFAULTS = {
    "dataset": {
        "name": None,  # a name of pcseg.engine.registry.DATASETS, or package.module:Class
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
        "num_workers": 0,  # DataLoader worker processes
        "repeat": 1,  # training split: each scan appears this many times per epoch
        "synthetic_scans": 0,  # training split: add this many generated street scans (pcseg.synth)
        "synthetic_seed": 0,  # seed of the first added synthetic scan
        "synthetic_sensor": "hdl64",  # the simulated sensor of the added scans
        "synthetic_layouts": None,  # road types of the added scans (urban, rural, highway); null = urban
        "synthetic_ground": None,  # ranges of their ground details: {curb_height: [lo, mode, hi], paved_roughness: [lo, hi]}
        "recenter": False,  # move scans stored away from their sensor (map frame) into the sensor frame
        "extra_datasets": [],  # training split: more datasets mixed in, each {name, root, split, repeat, <own keys>}
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
        "loss": ["ce", "lovasz"],  # names (weights from <name>_weight, else 1) or {name: weight or {weight, args}}
        "class_weights": "frequency",  # frequency | none (the ce loss's default)
        "ce_weight": 1.0,  # weight of `ce` when train.loss is a list
        "lovasz_weight": 1.0,  # weight of `lovasz` when train.loss is a list
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
        "keep_memory": True,  # glibc: keep freed memory for the next step instead of re-mapping it (pcseg.memory)
        "init_from": None,  # checkpoint whose model weights start this run (an earlier stage)
    },
}

# what build_dataset gives every dataset constructor besides the dataset's own keys
DATASET_ARGUMENTS = ("root", "split", "label_map", "features", "stage", "require_labels", "training", "num_points",
                     "voxel_size", "block_size", "augment", "augment_seed", "max_eval_points", "cache")

# the keys of a dataset.extra_datasets entry besides the dataset class's own arguments
EXTRA_DATASET_KEYS = ("name", "root", "split", "repeat")


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
    given_dataset = raw.get("dataset") or {}
    own_keys = _dataset_own_keys(given_dataset, source)
    shared = {k: v for k, v in given_dataset.items() if k not in own_keys}
    config["dataset"] = _merge(DEFAULTS["dataset"], shared, "dataset", source)
    for key, default in own_keys.items():
        config["dataset"][key] = copy.deepcopy(given_dataset.get(key, default))
    config["train"] = _merge(DEFAULTS["train"], raw.get("train") or {}, "train", source)
    model = raw.get("model")
    if not isinstance(model, dict) or not model.get("name"):
        raise ConfigError(f"config {source}: model.name is required (e.g. MinkUNet, PointNet2SSG)")
    config["model"] = copy.deepcopy(model)

    dataset, train = config["dataset"], config["train"]
    try:
        loss_terms(train)
    except ConfigError as exc:
        raise ConfigError(f"config {source}: {exc}") from None
    _check_choice(train, "optimizer", ("adamw", "sgd"), source)
    _check_choice(train, "scheduler", ("cosine", "onecycle", "none"), source)
    _check_choice(train, "amp", ("auto", "bf16", "fp16", "off"), source)
    _check_choice(train, "class_weights", ("frequency", "none"), source)
    _check_choice(train, "device", ("auto", "cpu", "cuda"), source)
    if not isinstance(dataset["synthetic_scans"], int) or dataset["synthetic_scans"] < 0:
        raise ConfigError(f"config {source}: dataset.synthetic_scans must be an integer >= 0, "
                          f"got {dataset['synthetic_scans']!r}")
    if not isinstance(dataset["recenter"], bool):
        raise ConfigError(f"config {source}: dataset.recenter must be true or false, got {dataset['recenter']!r}")
    if not isinstance(train["keep_memory"], bool):
        raise ConfigError(f"config {source}: train.keep_memory must be true or false, got {train['keep_memory']!r}")
    _check_extra_datasets(dataset["extra_datasets"], source)
    for where, section, keys in (("dataset", dataset, ("repeat",)),
                                 ("train", train, ("epochs", "batch_size", "val_batch_size", "eval_every"))):
        for key in keys:
            value = section[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"config {source}: {where}.{key} must be a positive integer, got {value!r}")
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


def _check_extra_datasets(entries, source: str) -> None:
    """Check ``dataset.extra_datasets``: a list of mappings with ``name`` and ``split``, an
    optional ``root`` and ``repeat`` (integer >= 1), and otherwise only the dataset class's own
    keyword arguments (features, sampling and augmentation are shared with the main dataset)."""
    from pcseg.engine.registry import parameters, resolve

    if not isinstance(entries, list):
        raise ConfigError(f"config {source}: dataset.extra_datasets must be a list of mappings, got {entries!r}")
    for i, entry in enumerate(entries):
        where = f"dataset.extra_datasets[{i}]"
        if not isinstance(entry, dict) or not entry.get("name") or entry.get("split") is None:
            raise ConfigError(f"config {source}: {where} must be a mapping with at least name and split, "
                              f"e.g. {{name: folder, root: data, split: ['*.bin']}}; got {entry!r}")
        repeat = entry.get("repeat", 1)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
            raise ConfigError(f"config {source}: {where}.repeat must be a positive integer, got {repeat!r}")
        for key in entry:
            if key not in EXTRA_DATASET_KEYS and (key in DEFAULTS["dataset"] or key in DATASET_ARGUMENTS):
                raise ConfigError(f"config {source}: {where}.{key}: shared with the main dataset; set dataset.{key}")
        try:
            own = parameters(resolve("dataset", entry["name"]))  # named arguments only, as for dataset
        except ConfigError as exc:
            raise ConfigError(f"config {source}: {where}: {exc}") from None
        allowed = [k for k in own if k not in DATASET_ARGUMENTS] + list(EXTRA_DATASET_KEYS)
        for key in entry:
            if key not in allowed:
                import difflib

                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {where}.{close[0]}?)" if close else ""
                raise ConfigError(f"config {source}: unknown key {where}.{key}{hint}")


def _dataset_own_keys(given, source: str) -> dict:
    """``{key: default}`` of the dataset constructor's own keyword arguments (beyond the shared
    keys of :data:`DEFAULTS` and what the builder passes); ``inspect.Parameter.empty`` when
    the constructor has no default for it."""
    if not isinstance(given, dict):
        raise ConfigError(f"config {source}: dataset must be a mapping, got {type(given).__name__}")
    name = given.get("name")
    if not name:
        from pcseg.engine.registry import DATASETS

        raise ConfigError(f"config {source}: dataset.name is required: one of {sorted(DATASETS)} or package.module:Class")
    from pcseg.engine.registry import parameters, resolve

    try:
        params = parameters(resolve("dataset", name))
    except ConfigError as exc:
        raise ConfigError(f"config {source}: {exc}") from None
    own = {key: p.default for key, p in params.items()
           if key not in DATASET_ARGUMENTS and key not in DEFAULTS["dataset"]}
    import inspect

    missing = [key for key, default in own.items() if default is inspect.Parameter.empty and key not in given]
    if missing:
        raise ConfigError(f"config {source}: dataset {name!r} needs dataset.{missing[0]}")
    return own


def loss_terms(train: dict) -> list[tuple[str, float, dict]]:
    """``train.loss`` as ``[(name, weight, constructor arguments), ...]``.

    ``[ce, lovasz]`` takes each weight from ``train.<name>_weight`` when that key exists (1.0
    otherwise); ``{ce: 1.0, lovasz: {weight: 0.5}}`` states weights (and arguments) per loss.
    Terms of weight 0 are dropped. Raises :class:`ConfigError` for a malformed entry.
    """
    spec = train["loss"]
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, list):
        spec = {name: train.get(f"{name}_weight", 1.0) for name in spec}
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(f"train.loss must be a list of loss names or a mapping name -> weight, got {spec!r}")
    terms = []
    for name, value in spec.items():
        args = dict(value) if isinstance(value, dict) else {"weight": value}
        weight = args.pop("weight", 1.0)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise ConfigError(f"train.loss: weight of {name!r} must be a non-negative number, got {weight!r}")
        if weight > 0:
            terms.append((str(name), float(weight), args))
    if not terms and not train.get("offset_weight"):  # an instance head's offset loss may train alone
        raise ConfigError("train.loss: every loss has weight 0")
    return terms


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
