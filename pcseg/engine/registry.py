"""The name tables: models, datasets and losses a config can name, one plain dict per kind.

Each table maps a config name to ``"module:attribute"``; nothing is imported until a name is
used, and importing a module never adds to a table (no registration side effects). A config may
also name any importable ``"package.module:Attribute"`` directly, so a model, dataset or loss of
your own lives in one file of your own and pcseg stays untouched::

    model:
      name: my_project.models:TinyNet      # constructor arguments = the section's other keys
    dataset:
      name: my_project.data:MyScans        # its own keys next to the shared dataset keys
    train:
      loss: {ce: 1.0, my_project.losses:FocalLoss: {weight: 0.5, gamma: 2.0}}

A model is called as ``cls(num_classes=..., in_channels=..., **model_section)``; a dataset as
described in :func:`pcseg.engine.builders.build_dataset`; a loss as described in
:mod:`pcseg.engine.losses`. Every constructor's arguments are checked against its signature
(:func:`check_arguments`), so a misspelt key is a :class:`~pcseg.errors.ConfigError`.
"""

from __future__ import annotations

import importlib
import inspect

from pcseg.errors import ConfigError

MODELS = {
    "MinkUNet": "pcseg.models.minkunet:MinkUNet",
    "PointNet2SSG": "pcseg.models.pointnet2:PointNet2SSG",
    "PointNet2MSG": "pcseg.models.pointnet2:PointNet2MSG",
    "SPVCNN": "pcseg.models.spvcnn:SPVCNN",
    "PointTransformerV3": "pcseg.models.ptv3:PointTransformerV3",
    "FastVoxelNet": "pcseg.models.realtime:FastVoxelNet",
    "PanopticMinkUNet": "pcseg.models.panoptic:PanopticMinkUNet",
}

DATASETS = {
    "semantickitti": "pcseg.datasets.semantickitti:SemanticKITTIDataset",
    "synthetic": "pcseg.datasets.synthetic:synthetic_dataset",
    "s3dis": "pcseg.datasets.s3dis:S3DISDataset",
    "scannet": "pcseg.datasets.scannet:ScanNetDataset",
    "folder": "pcseg.datasets.folder:FolderDataset",
}

LOSSES = {
    "ce": "pcseg.engine.losses:CrossEntropyLoss",
    "lovasz": "pcseg.engine.losses:LovaszSoftmaxLoss",
}

TABLES = {"model": MODELS, "dataset": DATASETS, "loss": LOSSES}


def resolve(kind: str, name) -> object:
    """The class (or factory) ``name`` of ``kind`` (``model``, ``dataset``, ``loss``).

    ``name`` is a key of the kind's table or ``"package.module:Attribute"``. Raises
    :class:`ConfigError` naming the config key for an unknown name or a failed import.
    """
    table = TABLES[kind]
    text = str(name)
    if text in table:
        target = table[text]
    elif ":" in text:
        target = text
    else:
        raise ConfigError(f"{kind}.name: unknown {kind} {text!r}; choose from {sorted(table)} "
                          f"or give package.module:Class")
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{kind} {text!r}: cannot import {target} ({exc})") from None


def parameters(target) -> dict[str, inspect.Parameter]:
    """Parameters of ``target``'s constructor (or function) that can be passed by name."""
    params = inspect.signature(target).parameters
    return {name: p for name, p in params.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def takes_any(target) -> bool:
    """Whether ``target`` accepts arbitrary keyword arguments (``**kwargs``)."""
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(target).parameters.values())


def check_arguments(target, keys, where: str) -> None:
    """Raise :class:`ConfigError` for any of ``keys`` that ``target`` does not accept.

    ``where`` is the config path of the section, e.g. ``"model"`` -> ``unknown key model.widht``.
    """
    if takes_any(target):
        return
    params = parameters(target)
    for key in keys:
        if key not in params:
            import difflib

            close = difflib.get_close_matches(key, list(params), n=1)
            hint = f" (did you mean {where}.{close[0]}?)" if close else ""
            raise ConfigError(f"unknown key {where}.{key}{hint}: {getattr(target, '__name__', target)} "
                              f"takes {sorted(params)}")


def accepted(target, offered: dict) -> dict:
    """The entries of ``offered`` whose names ``target`` accepts (all of them for ``**kwargs``)."""
    if takes_any(target):
        return dict(offered)
    params = parameters(target)
    return {k: v for k, v in offered.items() if k in params}
