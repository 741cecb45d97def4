"""ScanNet v2 scenes, in the raw release layout or the preprocessed layouts users already have.

Three layouts, found per scene (one dataset may mix them):

- **raw release**: a folder ``sceneXXXX_XX/`` holding ``sceneXXXX_XX_vh_clean_2.ply`` (the mesh
  vertices: x y z red green blue alpha) and, for annotated scenes,
  ``sceneXXXX_XX_vh_clean_2.labels.ply`` (the same vertices with a ``label`` property holding
  NYU40 ids). Instance ids come from ``sceneXXXX_XX.aggregation.json`` (``segGroups``: each
  object's ``id`` and over-segments) with ``sceneXXXX_XX_vh_clean_2.0.010000.segs.json``
  (``segIndices``: each vertex's over-segment) when both are present.
- **Pointcept-style folders**: ``sceneXXXX_XX/coord.npy`` (N, 3), ``color.npy`` (N, 3) 0..255,
  optional ``normal.npy``, ``segment20.npy`` (index 0..19 into the 20 benchmark classes, -1 =
  ignored) and ``instance.npy`` (0-based object ids, -1 = none). ``segment200.npy`` (ScanNet200)
  cannot be mapped to the 20 classes without ScanNet's category table and is not read.
- **one array per scene**: ``sceneXXXX_XX.npy``, float (N, 6+) with columns x y z r g b
  (colours 0..255 or 0..1), then the NYU40 label and a 0-based instance id (-1 = none) when
  present.

Scenes are searched in ``root`` and in its direct subfolders (``scans/``, ``train/``, ``val/``...).
Labels are NYU40 ids mapped to train ids by the label map (``scannet``: the 20 benchmark classes,
everything else ignored). Instance ids follow pcseg's convention: 1, 2, ... per object (the
file's id + 1) and 0 for points in no object and for wall, floor and ignored classes (ScanNet's
instance benchmark counts the other 18 classes only). Coordinates stay as stored (metres, the
frame :func:`pcseg.io.read_points` gives for the same PLY).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import numpy as np

from pcseg.datasets.base import ScanDataset
from pcseg.errors import PcsegFileNotFoundError, PcsegValueError, PointCloudFormatError

# NYU40 ids of ScanNet's 20 benchmark classes, in benchmark order (Pointcept's segment20 indexes this)
BENCHMARK_NYU40 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
# the benchmark classes that are objects (ScanNet's instance benchmark: all but wall and floor)
THING_NYU40 = tuple(i for i in BENCHMARK_NYU40 if i not in (1, 2))

MESH = "_vh_clean_2.ply"
LABELS = "_vh_clean_2.labels.ply"
SEGMENTS = "_vh_clean_2.0.010000.segs.json"
AGGREGATION = ".aggregation.json"


class ScanNetDataset(ScanDataset):
    """One sample per ScanNet scene of ``split``.

    Args:
        root: folder holding the scenes, directly or one level down (``scans/``, ``train/``...).
        split: a list (or one) of: a ``.txt`` file of scene names, one per line (ScanNet's
            ``scannetv2_train.txt``; relative to ``root`` or absolute); a subfolder of ``root``
            (``train`` for Pointcept's ``root/train/scene*``); a scene name or glob
            (``scene0000_00``, ``scene00*``).
        label_map: NYU40 ids -> train ids (``scannet``).
        features: e.g. ``[xyz, rgb]``; ``normals`` for Pointcept folders with ``normal.npy``.
        require_labels: fail on a scene without labels (training/evaluation).
        **kwargs: :class:`~pcseg.datasets.base.ScanDataset` options.
    """

    def __init__(self, root, split, label_map, features, require_labels=True, **kwargs):
        super().__init__(label_map, features, **kwargs)
        self.root = Path(root)
        if not self.root.is_dir():
            raise PcsegFileNotFoundError(f"ScanNet root not found: {self.root} (dataset.root)")
        self.require_labels = require_labels
        self.items = select_scenes(self.root, split)

    def describe(self, index: int) -> str:
        return str(self.items[index])

    def load_cloud(self, index: int):
        path = self.items[index]
        cloud = read_scene(path)
        if cloud.labels is not None:
            cloud.labels = self.to_train(cloud.labels, path)
        elif self.require_labels:
            raise PcsegValueError(f"ScanNet scene {path}: no labels ({_label_hint(path)}); "
                                  "test scenes belong in dataset.test_split")
        return cloud


# --------------------------------------------------------------------------- finding scenes
def scene_kind(path: Path) -> str | None:
    """``"raw"``, ``"pointcept"``, ``"array"`` or None (not a scene) for a folder or file."""
    if path.is_dir():
        if (path / f"{path.name}{MESH}").is_file():
            return "raw"
        if (path / "coord.npy").is_file():
            return "pointcept"
        return None
    return "array" if path.suffix.lower() == ".npy" and path.is_file() else None


def find_scenes(folder: Path) -> list[Path]:
    """The scenes directly inside ``folder``, sorted by name."""
    return sorted((p for p in folder.iterdir() if scene_kind(p)), key=lambda p: p.name)


def scene_index(root: Path) -> dict[str, list[Path]]:
    """Scene name -> every place it was found in ``root`` and its direct subfolders."""
    index: dict[str, list[Path]] = {}
    places = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not scene_kind(p))
    for folder in places:
        for scene in find_scenes(folder):
            name = scene.stem if scene.is_file() else scene.name
            index.setdefault(name, []).append(scene)
    return index


def select_scenes(root: Path, split) -> list[Path]:
    """The scene paths ``split`` names (see :class:`ScanNetDataset`), in order, without repeats."""
    entries = [split] if isinstance(split, (str, Path)) else list(split or [])
    if not entries:
        raise PcsegValueError(f"ScanNet root {root}: the split is empty; give scene names, globs, "
                              "a subfolder or a scene-list .txt")
    index = None
    chosen: list[Path] = []
    for entry in entries:
        text = str(entry)
        if text.endswith(".txt"):
            listing = Path(text) if Path(text).is_absolute() else root / text
            if not listing.is_file():
                raise PcsegFileNotFoundError(f"ScanNet scene list not found: {listing} (dataset split)")
            names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
            index = index if index is not None else scene_index(root)
            missing = [n for n in names if n not in index]
            if missing:
                raise PcsegFileNotFoundError(
                    f"ScanNet scene list {listing}: {len(missing)} scene(s) not found under {root}, "
                    f"e.g. {', '.join(missing[:3])}")
            chosen += [_one(index, n, root) for n in names]
        elif (root / text).is_dir() and not scene_kind(root / text):
            found = find_scenes(root / text)
            if not found:
                raise PcsegValueError(f"ScanNet split folder {root / text} holds no scenes "
                                      f"(folders with <scene>{MESH} or coord.npy, or <scene>.npy files)")
            chosen += found
        else:
            index = index if index is not None else scene_index(root)
            names = sorted(n for n in index if fnmatch.fnmatchcase(n, text))
            if not names:
                raise PcsegFileNotFoundError(f"ScanNet root {root}: no scene matches {text!r} "
                                             f"({len(index)} scene(s) found there)")
            chosen += [_one(index, n, root) for n in names]
    return list(dict.fromkeys(chosen))


def _one(index, name, root) -> Path:
    places = index[name]
    if len(places) > 1:
        raise PcsegValueError(f"ScanNet scene {name} is under {root} more than once ({', '.join(map(str, places))}); "
                              "name its subfolder in the split instead")
    return places[0]


# --------------------------------------------------------------------------- reading one scene
def read_scene(path):
    """One ScanNet scene in any of the three layouts as a :class:`~pcseg.io.PointCloud`.

    Returns float32 xyz (N, 3) in metres, rgb (N, 3) in [0, 1], normals when stored, ``labels``
    int64 (N,) NYU40 ids (0 = unannotated) or None, ``instance`` int64 (N,) (0 = none or not a
    thing class, 1.. per object) or None.
    """
    path = Path(path)
    kind = scene_kind(path)
    if kind == "raw":
        cloud = _read_raw(path)
    elif kind == "pointcept":
        cloud = _read_pointcept(path)
    elif kind == "array":
        cloud = _read_array(path)
    elif not path.exists():
        raise PcsegFileNotFoundError(f"ScanNet scene not found: {path}")
    else:
        raise PointCloudFormatError(f"{path}: not a ScanNet scene (a folder with {path.name}{MESH} or "
                                    "coord.npy, or an (N, 6+) .npy array)")
    if cloud.instance is not None and cloud.labels is not None:
        cloud.instance = np.where(np.isin(cloud.labels, THING_NYU40), cloud.instance, 0)
    return cloud


def _read_raw(folder: Path):
    from pcseg.io.ply import read_ply

    name = folder.name
    cloud = read_ply(folder / f"{name}{MESH}")
    cloud.labels, cloud.instance = None, None
    if cloud.rgb is None:
        raise PointCloudFormatError(f"{folder / (name + MESH)}: no red/green/blue vertex properties")
    labels_path = folder / f"{name}{LABELS}"
    if labels_path.is_file():
        labelled = read_ply(labels_path)
        if len(labelled) != len(cloud):
            raise PointCloudFormatError(f"{labels_path}: {len(labelled)} vertices but {name}{MESH} has {len(cloud)}")
        if labelled.labels is None:
            raise PointCloudFormatError(f"{labels_path}: no 'label' vertex property")
        cloud.labels = labelled.labels
    segments, aggregation = folder / f"{name}{SEGMENTS}", folder / f"{name}{AGGREGATION}"
    if segments.is_file() and aggregation.is_file():
        cloud.instance = _instances(segments, aggregation, len(cloud))
    return cloud


def _read_json(path: Path, key: str):
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PointCloudFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or key not in data or not isinstance(data[key], list):
        raise PointCloudFormatError(f"{path}: expected a JSON object with a {key!r} list")
    return data[key]


def _instances(segments: Path, aggregation: Path, n: int) -> np.ndarray:
    """int64 (n,): each vertex's object ``id`` + 1 from the aggregation, 0 outside every object."""
    seg_indices = _read_json(segments, "segIndices")
    if len(seg_indices) != n:
        raise PointCloudFormatError(f"{segments}: {len(seg_indices)} segIndices but the mesh has {n} vertices")
    try:
        seg_of_vertex = np.asarray(seg_indices, dtype=np.int64)
    except (TypeError, ValueError):
        raise PointCloudFormatError(f"{segments}: segIndices must be integers") from None
    instance = np.zeros(n, dtype=np.int64)
    for k, group in enumerate(_read_json(aggregation, "segGroups")):
        try:
            object_id = int(group["id"] if "id" in group else group["objectId"])
            members = np.asarray(group["segments"], dtype=np.int64)
        except (KeyError, TypeError, ValueError):
            raise PointCloudFormatError(f"{aggregation}: segGroups[{k}] needs an integer 'id' and a "
                                        "'segments' list of integers") from None
        instance[np.isin(seg_of_vertex, members)] = object_id + 1  # a later group wins, as ScanNet's tools do
    return instance


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise PointCloudFormatError(f"{path}: not a readable .npy array ({exc})") from None


def _ids(values, path: Path) -> np.ndarray:
    values = np.asarray(values).reshape(-1)
    if values.dtype.kind == "f":
        if not (np.isfinite(values).all() and np.all(values == np.round(values))):
            raise PointCloudFormatError(f"{path}: ids must be whole numbers")
    elif values.dtype.kind not in "iu":
        raise PointCloudFormatError(f"{path}: ids must be integers, got dtype {values.dtype}")
    return values.astype(np.int64)


def _objects(values, path) -> np.ndarray:
    """0-based object ids with negatives for none -> pcseg's 1.. with 0 for none."""
    ids = _ids(values, path)
    return np.where(ids >= 0, ids + 1, 0)


def _read_pointcept(folder: Path):
    from pcseg.io import PointCloud
    from pcseg.io._common import scale_colors

    coord = _load_npy(folder / "coord.npy")
    if coord.ndim != 2 or coord.shape[1] != 3 or coord.dtype.kind != "f":
        raise PointCloudFormatError(f"{folder / 'coord.npy'}: expected float (N, 3), got {coord.dtype} {coord.shape}")
    n = len(coord)
    fields = {}
    for name, key in (("color.npy", "rgb"), ("normal.npy", "normals"), ("segment20.npy", "labels"),
                      ("instance.npy", "instance")):
        path = folder / name
        if not path.is_file():
            continue
        values = _load_npy(path)
        if len(values) != n:
            raise PointCloudFormatError(f"{path}: {len(values)} rows but coord.npy has {n} points")
        if key in ("rgb", "normals") and values.shape != (n, 3):
            raise PointCloudFormatError(f"{path}: expected shape ({n}, 3), got {values.shape}")
        if key == "rgb":
            values = scale_colors(values, str(path))
        elif key == "labels":
            index = _ids(values, path)
            if index.min(initial=0) < -1 or index.max(initial=0) >= len(BENCHMARK_NYU40):
                raise PointCloudFormatError(f"{path}: segment20 values must lie in -1..19, got "
                                            f"{index.min()}..{index.max()}")
            values = np.asarray((0,) + BENCHMARK_NYU40, dtype=np.int64)[index + 1]  # -1 -> 0 unannotated
        elif key == "instance":
            values = _objects(values, path)
        fields[key] = values
    return PointCloud(xyz=coord, source=str(folder), **fields)


def _read_array(path: Path):
    from pcseg.io import PointCloud
    from pcseg.io._common import scale_colors, split_offset

    data = _load_npy(path)
    if data.ndim != 2 or data.shape[1] < 6 or data.dtype.kind not in "fiu":
        raise PointCloudFormatError(f"{path}: expected a numeric (N, 6+) array with columns x y z r g b "
                                    f"[label [instance]], got {data.dtype} {data.shape}")
    xyz, offset = split_offset(data[:, :3].astype(np.float64))
    fields = {"rgb": scale_colors(data[:, 3:6], str(path))}
    if data.shape[1] >= 7:
        fields["labels"] = _ids(data[:, 6], path)
    if data.shape[1] >= 8:
        fields["instance"] = _objects(data[:, 7], path)
    return PointCloud(xyz=xyz, offset=offset, source=str(path), **fields)


def _label_hint(path: Path) -> str:
    kind = scene_kind(path)
    if kind == "raw":
        return f"no {path.name}{LABELS}"
    if kind == "pointcept":
        extra = " (segment200.npy is not read)" if (path / "segment200.npy").is_file() else ""
        return f"no segment20.npy{extra}"
    return "the array has no 7th column"
