"""Label maps: raw ids as stored in files <-> contiguous train ids, names and colours.

One schema for every dataset, the one SemanticKITTI's official YAML uses:

- ``labels``: raw id -> name
- ``color_map``: raw id -> [B, G, R] (BGR, as in the official file)
- ``learning_map``: raw id -> train id
- ``learning_map_inv``: train id -> raw id (written back when predictions are saved)
- ``learning_ignore``: train id -> bool (ignored by losses and metrics)
- ``learning_map_default`` (optional, a pcseg extension): train id for raw ids the map does not
  list. Without it, an unknown raw id is an error.

The built-in maps ship inside the package (``pcseg/data/label_maps/``, found with
:mod:`importlib.resources`, so they load from a wheel as from a checkout); your own maps go
anywhere, e.g. the repository's ``datasets/`` folder, and load with :meth:`LabelMap.from_yaml`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from pcseg.errors import ConfigError, PcsegValueError
from pcseg.io._common import read_yaml_mapping

BUILTIN_NAMES = ("semantickitti", "s3dis", "scannet", "asprs")
# what the raw ids of each built-in map are, for hints when ids do not fit a map
BUILTIN_ID_KINDS = {"semantickitti": "SemanticKITTI ids", "s3dis": "S3DIS class indices 0..12",
                    "scannet": "NYU40 ids", "asprs": "ASPRS LAS classes"}

_REQUIRED_KEYS = ("labels", "color_map", "learning_map", "learning_map_inv", "learning_ignore")


class LabelMap:
    """Raw ids <-> train ids ``0..num_classes-1`` for one dataset.

    Attributes:
        name: short name (the YAML's ``name`` key or the file stem).
        num_classes: number of train ids, including ignored ones (SemanticKITTI: 20).
        class_names: list of str, index = train id (name of ``learning_map_inv[id]``).
        colors: uint8 (num_classes, 3) RGB colour of each train id.
        ignore_index: list of int, train ids skipped by losses and metrics.
        raw_names: dict raw id -> name.
        raw_colors: dict raw id -> (R, G, B) tuple of int.
        learning_map: dict raw id -> train id.
        learning_map_inv: dict train id -> raw id.
        unknown_train_id: train id for raw ids not in ``learning_map``, or None (then an error).
        source: the YAML file it was read from.
    """

    def __init__(self, spec: dict, source: str = "<dict>"):
        """Build from a parsed YAML mapping (see the module docstring); ``source`` names it in errors."""
        self.source = str(source)
        if not isinstance(spec, dict):
            raise ConfigError(f"label map {self.source}: expected a mapping, got {type(spec).__name__}")
        missing = [key for key in _REQUIRED_KEYS if key not in spec]
        if missing:
            raise ConfigError(f"label map {self.source}: missing key(s) {missing}")
        try:
            self.raw_names = {int(k): str(v) for k, v in spec["labels"].items()}
            self.raw_colors = {int(k): _bgr_to_rgb(v, k, self.source) for k, v in spec["color_map"].items()}
            self.learning_map = {int(k): int(v) for k, v in spec["learning_map"].items()}
            self.learning_map_inv = {int(k): int(v) for k, v in spec["learning_map_inv"].items()}
            ignore = {int(k): bool(v) for k, v in spec["learning_ignore"].items()}
            default = spec.get("learning_map_default")
            self.unknown_train_id = None if default is None else int(default)
        except (AttributeError, TypeError, ValueError) as exc:
            raise ConfigError(f"label map {self.source}: malformed entry ({exc})") from None
        self.name = str(spec.get("name") or Path(self.source).stem)

        self.num_classes = len(self.learning_map_inv)
        if sorted(self.learning_map_inv) != list(range(self.num_classes)):
            raise ConfigError(
                f"label map {self.source}: learning_map_inv keys must be 0..N-1, got {sorted(self.learning_map_inv)}"
            )
        bad = sorted({t for t in self.learning_map.values() if not 0 <= t < self.num_classes})
        if self.unknown_train_id is not None and not 0 <= self.unknown_train_id < self.num_classes:
            bad.append(self.unknown_train_id)
        if bad:
            raise ConfigError(f"label map {self.source}: train id(s) {bad} outside 0..{self.num_classes - 1}")
        if any(raw < 0 for raw in self.learning_map):
            raise ConfigError(f"label map {self.source}: negative raw id in learning_map")
        for train_id, raw in self.learning_map_inv.items():
            if raw not in self.raw_names or raw not in self.raw_colors:
                raise ConfigError(
                    f"label map {self.source}: learning_map_inv[{train_id}] = {raw} has no entry in labels/color_map"
                )

        self.class_names = [self.raw_names[self.learning_map_inv[t]] for t in range(self.num_classes)]
        self.colors = np.array(
            [self.raw_colors[self.learning_map_inv[t]] for t in range(self.num_classes)], dtype=np.uint8
        ).reshape(self.num_classes, 3)
        self.ignore_index = [t for t in range(self.num_classes) if ignore.get(t, False)]
        self.split = spec.get("split")

        # dense lookup tables; -1 marks raw ids without a train id
        size = max(self.learning_map) + 1
        fill = -1 if self.unknown_train_id is None else self.unknown_train_id
        self._raw_to_train = np.full(size, fill, dtype=np.int64)
        for raw, train_id in self.learning_map.items():
            self._raw_to_train[raw] = train_id
        self._train_to_raw = np.array([self.learning_map_inv[t] for t in range(self.num_classes)], dtype=np.int64)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_yaml(cls, path) -> "LabelMap":
        """Read a SemanticKITTI-style label-map YAML (see the module docstring for the keys)."""
        spec = read_yaml_mapping(path, "label map")
        return cls(spec, source=str(path))

    @classmethod
    def builtin(cls, name: str) -> "LabelMap":
        """One of the shipped maps: ``semantickitti``, ``s3dis``, ``scannet``, ``asprs``."""
        key = str(name).lower().replace("-", "").replace("_", "")
        if key not in BUILTIN_NAMES:
            raise PcsegValueError(f"unknown built-in label map {name!r}; choose from {list(BUILTIN_NAMES)}")
        from pcseg.resources import label_map_file

        return cls.from_yaml(label_map_file(key))

    @classmethod
    def load(cls, name_or_path) -> "LabelMap":
        """A built-in map by name, or a YAML file by path (what ``--label-map`` accepts)."""
        text = str(name_or_path)
        if text.lower().replace("-", "").replace("_", "") in BUILTIN_NAMES and not Path(text).is_file():
            return cls.builtin(text)
        if text.endswith((".yaml", ".yml")) or Path(text).exists():
            return cls.from_yaml(text)
        raise PcsegValueError(
            f"label map {text!r} is neither a built-in name {list(BUILTIN_NAMES)} nor an existing YAML file"
        )

    # ------------------------------------------------------------------ mapping
    def to_train(self, raw) -> np.ndarray:
        """Map raw ids (any integer array) to int64 train ids of the same shape.

        Raw ids not in ``learning_map`` go to ``learning_map_default`` when the map defines one
        (ASPRS: reserved and user classes -> 0); otherwise they raise :class:`PcsegValueError`
        listing them. SemanticKITTI's map covers every raw id the official format defines.
        """
        raw = np.asarray(raw)
        if raw.dtype.kind not in "iu":
            raise PcsegValueError(f"to_train ({self.name}): raw ids must be integers, got dtype {raw.dtype}")
        raw = raw.astype(np.int64, copy=False)
        if raw.size == 0:
            return raw.copy()
        table = self._raw_to_train
        inside = (raw >= 0) & (raw < len(table))
        out = np.where(inside, table[np.where(inside, raw, 0)], -1)
        if self.unknown_train_id is not None:
            out[out < 0] = self.unknown_train_id
        elif (out < 0).any():
            unknown = np.unique(raw[out < 0])
            shown = ", ".join(str(v) for v in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            raise PcsegValueError(
                f"to_train ({self.name}): {int((out < 0).sum())} label(s) with raw id(s) not in the label map: "
                f"{shown}{fit_hint(np.unique(raw))}"
            )
        return out

    def to_raw(self, train) -> np.ndarray:
        """Map train ids ``0..num_classes-1`` to int64 raw ids via ``learning_map_inv``."""
        train = np.asarray(train)
        if train.dtype.kind not in "iu":
            raise PcsegValueError(f"to_raw ({self.name}): train ids must be integers, got dtype {train.dtype}")
        train = train.astype(np.int64, copy=False)
        if train.size and (train.min() < 0 or train.max() >= self.num_classes):
            raise PcsegValueError(
                f"to_raw ({self.name}): train ids must lie in 0..{self.num_classes - 1}, "
                f"got range {train.min()}..{train.max()}"
            )
        return self._train_to_raw[train]

    def to_dict(self) -> dict:
        """The map as plain data in the YAML schema (e.g. to store in a checkpoint);
        ``LabelMap(d)`` rebuilds an equal map."""
        bgr = {raw: [rgb[2], rgb[1], rgb[0]] for raw, rgb in self.raw_colors.items()}
        out = {
            "name": self.name,
            "labels": dict(self.raw_names),
            "color_map": bgr,
            "learning_map": dict(self.learning_map),
            "learning_map_inv": dict(self.learning_map_inv),
            "learning_ignore": {t: t in self.ignore_index for t in range(self.num_classes)},
        }
        if self.unknown_train_id is not None:
            out["learning_map_default"] = self.unknown_train_id
        if self.split is not None:
            out["split"] = self.split
        return out

    def __eq__(self, other) -> bool:
        """Equal when raw->train mapping, names, colours and ignored ids all agree."""
        if not isinstance(other, LabelMap):
            return NotImplemented
        mine, theirs = self.to_dict(), other.to_dict()
        mine.pop("name"), theirs.pop("name")
        mine.pop("split", None), theirs.pop("split", None)
        return mine == theirs

    __hash__ = None  # mutable-looking value object: compare, do not hash

    def raw_name(self, raw_id: int) -> str:
        """Name of a raw id, or ``'raw <id> (not in map)'``."""
        return self.raw_names.get(int(raw_id), f"raw {int(raw_id)} (not in map)")

    def __repr__(self) -> str:
        return f"LabelMap({self.name!r}, {self.num_classes} classes, ignore={self.ignore_index})"


@functools.lru_cache(maxsize=1)
def _builtin_raw_ids() -> dict[str, frozenset]:
    """Built-in map name -> the raw ids its ``learning_map`` lists (ids a default catches excluded)."""
    return {name: frozenset(LabelMap.builtin(name).learning_map) for name in BUILTIN_NAMES}


def fitting_builtins(raw_ids) -> list[str]:
    """Names of the built-in maps whose ``learning_map`` lists every id of ``raw_ids`` (any
    integer array), tightest first (the map listing the fewest ids)."""
    ids = {int(v) for v in np.unique(np.asarray(raw_ids))}
    tables = _builtin_raw_ids()
    return sorted((name for name, listed in tables.items() if ids <= listed), key=lambda n: len(tables[n]))


def fit_hint(raw_ids) -> str:
    """A hint naming the built-in maps whose ids ``raw_ids`` fit, e.g. ``"; these look like NYU40
    ids: try --label-map scannet (in Python LabelMap.builtin('scannet'))"``; ``""`` when none fits."""
    names = fitting_builtins(raw_ids)
    if not names:
        return ""
    if len(names) == 1:
        return (f"; these look like {BUILTIN_ID_KINDS[names[0]]}: try --label-map {names[0]} "
                f"(in Python LabelMap.builtin({names[0]!r}))")
    listed = ", ".join(f"{n} ({BUILTIN_ID_KINDS[n]})" for n in names)
    return f"; these ids fit the built-in label maps {listed}: try --label-map with the one your data uses"


def _bgr_to_rgb(value, key, source) -> tuple[int, int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ConfigError(f"label map {source}: color_map[{key}] must be [B, G, R], got {value!r}")
    b, g, r = (int(c) for c in value)
    if not all(0 <= c <= 255 for c in (r, g, b)):
        raise ConfigError(f"label map {source}: color_map[{key}] values must lie in 0..255")
    return (r, g, b)
