"""Config sections -> objects: label map, datasets, model, losses, optimizer, scheduler.

Models, datasets and losses are looked up by name in the plain tables of
:mod:`pcseg.engine.registry`; a config may also name ``"package.module:Class"`` for a class of
your own (a model following the model protocol ``forward_ragged(xyz, feats, offsets) -> logits``,
a :class:`~pcseg.datasets.base.ScanDataset`, a loss of :mod:`pcseg.engine.losses`' protocol).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from pcseg.engine import registry
from pcseg.errors import ConfigError, PcsegFileNotFoundError


def model_classes() -> dict:
    """``{name: class}`` of the models pcseg ships (:data:`pcseg.engine.registry.MODELS`)."""
    return {name: registry.resolve("model", name) for name in registry.MODELS}


def resolve_model_class(name: str):
    """The class for ``model.name``: a shipped model or ``module:Class``."""
    return registry.resolve("model", name)


def build_label_map(dataset_cfg: dict):
    from pcseg.io import LabelMap

    return LabelMap.load(dataset_cfg["label_map"])


def build_model(model_cfg: dict, num_classes: int, in_channels: int, label_map_name: str = "the label map"):
    """Instantiate ``model_cfg['name']`` with the section's other keys as arguments.

    ``num_classes`` and ``in_channels`` come from the label map and the feature list; a config
    that states them differently is a :class:`ConfigError`, as is an argument the class lacks.
    """
    cls = resolve_model_class(str(model_cfg["name"]))
    kwargs = {k: v for k, v in model_cfg.items() if k != "name"}
    for key, expected, why in (("num_classes", num_classes, f"{label_map_name} has"),
                               ("in_channels", in_channels, "dataset.features give")):
        if key in kwargs and kwargs[key] != expected:
            raise ConfigError(f"model.{key} is {kwargs[key]} but {why} {expected}")
        kwargs[key] = expected
    registry.check_arguments(cls, kwargs, "model")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {cls.__name__}: bad arguments ({exc})") from None


def build_dataset(config: dict, split: str, label_map, training: bool | None = None):
    """The dataset of ``split`` (``train``/``val``/``test``) described by ``config['dataset']``.

    ``training`` (default: split == "train") enables augmentations and point sampling. The
    dataset class (``dataset.name``, see :mod:`pcseg.engine.registry`) is called with keyword
    arguments: ``split`` (the value of ``dataset.<split>_split``), ``label_map``,
    ``features``, the sampling and augmentation options of
    :class:`~pcseg.datasets.base.ScanDataset` (``training``, ``num_points``, ``voxel_size``,
    ``block_size``, ``augment``, ``augment_seed`` = ``train.seed``, ``max_eval_points``),
    ``root``, ``stage`` and ``require_labels`` when its signature names them, and its own config
    keys.

    A training split may be mixed from several sources (a
    :class:`~pcseg.datasets.concat.ConcatScans`): the main dataset repeated ``dataset.repeat``
    times, ``dataset.synthetic_scans`` generated street scans, and every entry of
    ``dataset.extra_datasets`` (``{name, root, split, repeat, <its own keys>}``), built with the
    same features, label map, sampling and augmentation as the main one.
    """
    from pcseg.engine.config import DATASET_ARGUMENTS, DEFAULTS, EXTRA_DATASET_KEYS

    ds = config["dataset"]
    training = (split == "train") if training is None else training
    split_value = ds[f"{split}_split"]
    if split_value is None:
        raise ConfigError(f"dataset.{split}_split is not set")
    common = dict(
        label_map=label_map, features=ds["features"], training=training,
        num_points=ds["num_points"] if training else None,
        voxel_size=ds["voxel_size"] if training else None,
        block_size=ds["block_size"] if training else None,
        augment=ds["augment"] if training else None,
        augment_seed=config["train"]["seed"], max_eval_points=None if training else ds["max_eval_points"],
    )
    if ds["recenter"]:  # only when asked, so dataset classes of other projects need not know the key
        common["recenter"] = True
    own = {k: v for k, v in ds.items() if k not in DEFAULTS["dataset"] and k not in DATASET_ARGUMENTS}
    base = _build_one(ds["name"], ds["root"], split_value, split, own, common, "dataset")
    extra = ds["extra_datasets"] or []
    if split != "train" or not training or (ds["repeat"] == 1 and not ds["synthetic_scans"] and not extra):
        return base
    # a training split mixed from sources: the base part repeated, generated scans, other datasets
    from pcseg import datasets as D

    parts, repeats = [base], [ds["repeat"]]
    if ds["synthetic_scans"]:
        # generated scans are in their sensor's frame already
        shared = {k: v for k, v in common.items() if k != "recenter"}
        parts.append(D.SyntheticDataset(ds["synthetic_scans"], ds["synthetic_seed"], sensor=ds["synthetic_sensor"],
                                        layouts=ds["synthetic_layouts"], ground=ds["synthetic_ground"], **shared))
        repeats.append(1)
    for i, entry in enumerate(extra):
        entry_own = {k: v for k, v in entry.items() if k not in EXTRA_DATASET_KEYS}
        parts.append(_build_one(entry["name"], entry.get("root"), entry["split"], split, entry_own, common,
                                f"dataset.extra_datasets[{i}]"))
        repeats.append(entry.get("repeat", 1))
    return D.ConcatScans(parts, repeats)


def _build_one(name, root, split_value, stage: str, own: dict, common: dict, where: str):
    """One dataset of class ``name`` (registry name or ``module:Class``) with the shared
    ``common`` options, ``split``, and ``root`` / ``stage`` / ``require_labels`` where its
    signature names them; ``own`` are its own config keys, checked against its signature
    (``where`` is their config path in messages)."""
    target = registry.resolve("dataset", name)
    params = registry.parameters(target)
    if "root" in params and root is None and params["root"].default is params["root"].empty:
        raise ConfigError(f"{where}.root is required for the {name} dataset")
    if "root" not in params and root is not None:
        raise ConfigError(f"{where}.root: the {name} dataset takes no root folder")
    if root is not None and not Path(root).exists():
        raise PcsegFileNotFoundError(f"{where}.root not found: {root}")
    kwargs = dict(common, split=split_value)
    optional = {"root": root, "stage": stage, "require_labels": stage != "test"}
    kwargs.update({k: v for k, v in optional.items() if k in params})  # not via **kwargs: only if named
    registry.check_arguments(target, own, where)
    return target(**kwargs, **own)


def build_losses(train_cfg: dict, num_classes: int, ignore_index, train_set, device) -> list:
    """``[(weight, loss), ...]`` for ``train.loss`` (see :func:`pcseg.engine.config.loss_terms`).

    Each loss class is called with its config arguments plus those of ``num_classes``,
    ``ignore_index``, ``train_set``, ``device`` and (for ``class_weights``) ``train.class_weights``
    that its signature names.
    """
    from pcseg.engine.config import loss_terms

    out = []
    for name, weight, args in loss_terms(train_cfg):
        cls = registry.resolve("loss", name)
        registry.check_arguments(cls, args, f"train.loss.{name}")
        offered = {"num_classes": num_classes, "ignore_index": list(ignore_index), "train_set": train_set,
                   "device": device, "class_weights": train_cfg["class_weights"]}
        offered = {k: v for k, v in registry.accepted(cls, offered).items() if k not in args}
        try:
            out.append((weight, cls(**offered, **args)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"train.loss {name!r}: bad arguments ({exc})") from None
    return out


def build_optimizer(train_cfg: dict, parameters):
    if train_cfg["optimizer"] == "sgd":
        return torch.optim.SGD(parameters, lr=train_cfg["lr"], momentum=train_cfg["momentum"],
                               weight_decay=train_cfg["weight_decay"], nesterov=train_cfg["momentum"] > 0)
    return torch.optim.AdamW(parameters, lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])


def build_scheduler(train_cfg: dict, optimizer, total_steps: int):
    """Per-step schedule over ``total_steps`` optimizer steps (None for ``scheduler: none``)."""
    total_steps = max(1, int(total_steps))
    if train_cfg["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
    if train_cfg["scheduler"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=train_cfg["lr"], total_steps=total_steps + 1)
    return None
