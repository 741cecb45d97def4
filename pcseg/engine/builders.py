"""Config sections -> objects: label map, datasets, model, optimizer, scheduler.

Models are looked up by name in one plain dict (:func:`model_classes`); ``model.name`` may also
be ``"package.module:ClassName"`` for a user's own model following the model protocol
(``forward_ragged(xyz, feats, offsets) -> logits``).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math

import torch

from pcseg.errors import ConfigError, PcsegFileNotFoundError


def model_classes() -> dict:
    """``{name: class}`` of the models pcseg ships."""
    import pcseg.models as models

    names = ("MinkUNet", "PointNet2SSG", "PointNet2MSG",
             "SPVCNN",
             "PointTransformerV3",
             "FastVoxelNet",
             "PanopticMinkUNet",
             )
    return {name: getattr(models, name) for name in names if hasattr(models, name)}


def resolve_model_class(name: str):
    """The class for ``model.name``: a shipped model or ``module:Class``."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"model.name {name!r}: cannot import it ({exc})") from None
    classes = model_classes()
    if name not in classes:
        raise ConfigError(f"model.name: unknown model {name!r}; choose from {sorted(classes)} or give module:Class")
    return classes[name]


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
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params:
                close = difflib.get_close_matches(key, list(params), n=1)
                hint = f" (did you mean model.{close[0]}?)" if close else ""
                raise ConfigError(f"unknown key model.{key}{hint}: {cls.__name__} takes {sorted(params)}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {cls.__name__}: bad arguments ({exc})") from None


def build_dataset(config: dict, split: str, label_map, training: bool | None = None):
    """The dataset of ``split`` (``train``/``val``/``test``) described by ``config['dataset']``.

    ``training`` (default: split == "train") enables augmentations and point sampling.
    """
    from pcseg import datasets as D

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
        seed=config["train"]["seed"], max_eval_points=None if training else ds["max_eval_points"],
    )
    base = _build_base_dataset(ds, split, split_value, common)
    if split != "train" or not training or (ds["repeat"] == 1 and not ds["synthetic_scans"]):
        return base
    parts, repeats = [base], [ds["repeat"]]
    if ds["synthetic_scans"]:
        parts.append(D.SyntheticDataset(ds["synthetic_scans"], ds["synthetic_seed"], sensor=ds["sensor"], **common))
        repeats.append(1)
    return D.ConcatScans(parts, repeats)


def _build_base_dataset(ds: dict, split: str, split_value, common: dict):
    from pcseg import datasets as D

    name = ds["name"]
    if name == "synthetic" and ds["root"] is None:
        base = ds["seed"] + (0 if split == "train" else 100_000 if split == "val" else 200_000)
        return D.SyntheticDataset(split_value, base, sensor=ds["sensor"], **common)
    if ds["root"] is None:
        raise ConfigError(f"dataset.root is required for the {name} dataset")
    from pathlib import Path

    if not Path(ds["root"]).exists():
        raise PcsegFileNotFoundError(f"dataset.root not found: {ds['root']}")
    if name in ("semantickitti", "synthetic"):
        return D.SemanticKITTIDataset(ds["root"], split_value, require_labels=split != "test", **common)
    if name == "s3dis":
        return D.S3DISDataset(ds["root"], split_value, **common)
    return D.FolderDataset(ds["root"], split_value, label_replace=ds["label_replace"],
                           labels_are_train_ids=ds["labels_are_train_ids"], require_labels=split != "test", **common)


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
