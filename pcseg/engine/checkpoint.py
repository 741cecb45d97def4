"""Checkpoints: everything needed to resume training, and alone enough to segment.

A checkpoint is a ``torch.save`` dict with ``format == "pcseg-checkpoint"`` holding the config,
the label map (as its YAML spec), class names, the pcseg version, model/optimizer/scheduler/
scaler states, RNG states (python, numpy, torch, CUDA), epoch and step counters and the last
metrics. Files are written to a temporary name and renamed, so a crash never leaves a torn file
and never destroys the previous checkpoint. Loading uses ``weights_only=True``: a foreign
pickle cannot run code.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from pcseg.atomic import atomic_path
from pcseg.errors import CheckpointError, PcsegFileNotFoundError

FORMAT = "pcseg-checkpoint"
FORMAT_VERSION = 1


def label_map_spec(label_map) -> dict:
    """A LabelMap as plain YAML-schema data (``LabelMap(spec)`` rebuilds an equal map)."""
    return label_map.to_dict()


def rng_states() -> dict:
    """Python, numpy and torch (CPU and CUDA) global RNG states, as weights-only-safe values."""
    np_state = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    random.setstate(_as_tuple(states["python"]))
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(path, payload: dict) -> Path:
    """Write ``payload`` (plus format tag and pcseg version) atomically to ``path``."""
    from pcseg import __version__

    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "pcseg_version": __version__, **payload}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())  # on disk before the rename, so a crash keeps the old checkpoint
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read and check a checkpoint; :class:`CheckpointError` for a corrupt or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise PcsegFileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # torch raises many types (and internal messages) for truncated or foreign files
        raise CheckpointError(f"checkpoint {path}: not a readable pcseg checkpoint ({_what_file(path)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: not a pcseg checkpoint (no format tag {FORMAT!r})")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path}: format version {payload['format_version']} is newer than this pcseg "
            f"understands ({FORMAT_VERSION}); upgrade pcseg"
        )
    for key in ("config", "label_map", "model"):
        if key not in payload:
            raise CheckpointError(f"checkpoint {path}: missing {key!r}")
    return payload


def _what_file(path: Path) -> str:
    """A user-level description of a file torch could not load (no torch internals)."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        return "the file is empty"
    if head.startswith(b"PK"):
        return "a damaged or truncated torch archive; copy it again or use an earlier checkpoint"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(ch.isprintable() or ch.isspace() for ch in text):
        return "a text file, not a checkpoint written by pcseg train"
    return "not a torch checkpoint (foreign or damaged file)"


# what segmenting needs; the rest of a training checkpoint (optimizer moments, RNG states) is
# only for resuming and triples the file
INFERENCE_KEYS = ("config", "label_map", "class_names", "model", "metrics", "epoch", "step", "best_miou")
# what resuming needs on top of that (export_for_inference leaves these out)
RESUME_KEYS = ("optimizer", "scheduler", "scaler", "rng", "step_in_epoch")


def export_for_inference(src, dst) -> Path:
    """Write a copy of checkpoint ``src`` to ``dst`` without the training state.

    The result still loads with :meth:`pcseg.Segmenter.from_checkpoint` and ``pcseg segment`` and
    gives the same labels, but cannot be resumed. This is how the bundled checkpoints in
    ``pcseg/pretrained/`` are made from ``runs/.../best.pt``.
    """
    payload = load_checkpoint(src)
    return save_checkpoint(dst, {key: payload[key] for key in INFERENCE_KEYS if key in payload})


def label_map_from_checkpoint(payload: dict, source="checkpoint"):
    from pcseg.io import LabelMap

    return LabelMap(payload["label_map"], source=f"{source} (label map)")


def model_from_checkpoint(payload: dict, source="checkpoint"):
    """Rebuild the model the checkpoint's config describes and load its weights (eval mode)."""
    from pcseg.datasets.features import feature_width
    from pcseg.engine.builders import build_model

    config = payload["config"]
    label_map = label_map_from_checkpoint(payload, source)
    model = build_model(config["model"], label_map.num_classes, feature_width(config["dataset"]["features"]),
                        label_map.name)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {source}: weights do not fit {config['model']['name']} "
                              f"({str(exc).splitlines()[0]})") from None
    return model.eval(), label_map
