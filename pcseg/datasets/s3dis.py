"""S3DIS: ``ROOT/Area_N/<room>/Annotations/<class>_<k>.txt`` (x y z r g b per line, colours 0..255).

Each annotation file holds the points of one object; its class is the file name before the last
``_`` (``chair_3.txt`` -> chair; ``stairs`` counts as clutter, as is customary). Rooms without
an ``Annotations`` folder are read from ``<room>/<room>.txt`` without labels. The test area is
whichever areas ``val_split`` names: report it with every result (e.g. "Area 5").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcseg.datasets.base import ScanDataset
from pcseg.errors import PcsegFileNotFoundError, PcsegValueError, PointCloudFormatError

ALIASES = {"stairs": "clutter"}


def area_names(split) -> list[str]:
    """``[1, 2]`` / ``"Area_5"`` / ``5`` -> ``["Area_1", "Area_2"]`` etc."""
    if isinstance(split, (str, int)):
        split = [split]
    return [s if str(s).startswith("Area_") else f"Area_{int(s)}" for s in split]


class S3DISDataset(ScanDataset):
    """One sample per room of the listed areas (labels are class indices of the label map)."""

    def __init__(self, root, split, label_map, features, **kwargs):
        super().__init__(label_map, features, **kwargs)
        self.root = Path(root)
        if not self.root.is_dir():
            raise PcsegFileNotFoundError(f"S3DIS root not found: {self.root} (dataset.root)")
        self.areas = area_names(split)
        for area in self.areas:
            folder = self.root / area
            if not folder.is_dir():
                raise PcsegFileNotFoundError(f"S3DIS area folder not found: {folder}")
            self.items += sorted(p for p in folder.iterdir() if p.is_dir())
        if not self.items:
            raise PcsegValueError(f"S3DIS root {self.root}: no rooms in {self.areas}")
        self._class_ids = {name: i for i, name in enumerate(label_map.class_names)}

    def load_cloud(self, index: int):
        from pcseg.io import PointCloud

        room = self.items[index]
        annotations = sorted((room / "Annotations").glob("*.txt"))
        parts, labels = [], []
        if annotations:
            for path in annotations:
                name = path.stem.rsplit("_", 1)[0]
                name = ALIASES.get(name, name)
                if name not in self._class_ids:
                    raise PcsegValueError(f"{path}: class {name!r} is not in label map {self.label_map.name}")
                data = _read_txt(path)
                parts.append(data)
                labels.append(np.full(len(data), self._class_ids[name], dtype=np.int64))
            data, labels = np.concatenate(parts), np.concatenate(labels)
        else:
            whole = room / f"{room.name}.txt"
            if not whole.is_file():
                raise PcsegFileNotFoundError(f"S3DIS room {room}: neither Annotations/*.txt nor {whole.name}")
            data, labels = _read_txt(whole), None
        xyz = data[:, :3] - data[:, :3].min(axis=0)  # rooms are far from the origin; local frame
        return PointCloud(xyz=xyz, rgb=np.clip(data[:, 3:6] / 255.0, 0, 1), labels=labels,
                          offset=data[:, :3].min(axis=0).astype(np.float64), source=str(room))


def _read_txt(path) -> np.ndarray:
    try:
        data = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise PointCloudFormatError(f"{path}: not a table of numbers ({exc})") from None
    if data.shape[1] < 6:
        raise PointCloudFormatError(f"{path}: expected x y z r g b columns, got {data.shape[1]} column(s)")
    return data
