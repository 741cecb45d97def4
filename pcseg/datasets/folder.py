"""Any folder of readable point files plus label files: the dataset for users' own data.

Files are picked with globs relative to ``root`` (e.g. ``["scans/*.ply"]``). Each points file's
labels come from a label file found by replacing one substring of its path (``label_replace``,
e.g. ``["_points_", "_labels_"]`` for Open3D-ML's ``kitti_01_points_000000.npy``), or, without
``label_replace``, from the labels stored in the points file itself (PLY/LAS/... fields).
Label files may hold raw ids (mapped with the label map) or train ids (``labels_are_train_ids``).
LAS/LAZ tiles whose CRS is in feet are converted to metres (as ``segment_las`` does at inference).
A scan in the SemanticKITTI layout (``.../velodyne/NNNNNN.bin`` beside ``.../labels/NNNNNN.label``)
finds its labels there when ``label_replace`` is not given or does not apply to its name, so one
split can mix such scans with other files; ``.label`` files always hold raw ids, as the format
defines, and their instance ids (upper 16 bits) become the cloud's ``instance`` (panoptic
training); other label files give no instance ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcseg.datasets.base import ScanDataset
from pcseg.errors import PcsegFileNotFoundError, PcsegValueError, PointCloudFormatError


class FolderDataset(ScanDataset):
    """Scans matched by the globs ``split`` under ``root``.

    Args:
        root: base folder.
        split: glob or list of globs relative to ``root`` (the config's ``<stage>_split``).
        label_replace: ``[from, to]`` substring replacement giving the label file of a points
            file, or None (labels read from the points file).
        labels_are_train_ids: label values are already train ids ``0..num_classes-1``.
        require_labels: fail when a scan has no labels.
    """

    def __init__(self, root, split, label_map, features, label_replace=None, labels_are_train_ids=False,
                 require_labels=True, **kwargs):
        super().__init__(label_map, features, **kwargs)
        self.root = Path(root)
        if not self.root.is_dir():
            raise PcsegFileNotFoundError(f"dataset folder not found: {self.root} (dataset.root)")
        patterns = split
        if patterns is None:
            raise PcsegValueError(f"folder dataset {self.root}: the split needs a list of globs, e.g. ['*.ply']")
        patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        if label_replace is not None and (not isinstance(label_replace, (list, tuple)) or len(label_replace) != 2):
            raise PcsegValueError(f"dataset.label_replace must be [from, to], got {label_replace!r}")
        self.label_replace = label_replace
        self.labels_are_train_ids = labels_are_train_ids
        self.require_labels = require_labels
        for pattern in patterns:
            found = sorted(self.root.glob(str(pattern)))
            if not found:
                raise PcsegFileNotFoundError(f"folder dataset: no file matches {pattern!r} under {self.root}")
            for path in found:
                self.items.append((path, self._label_path(path)))

    def _label_path(self, path: Path):
        from pcseg.io.labels import kitti_label_path

        if self.label_replace is None:
            return kitti_label_path(path)  # None: labels from the points file itself
        old, new = self.label_replace
        if old not in path.name:
            kitti_label = kitti_label_path(path)
            if kitti_label is not None:
                return kitti_label
            raise PcsegValueError(f"{path}: label_replace {old!r} -> {new!r} does not apply (no {old!r} in the name)")
        label = path.with_name(path.name.replace(old, new))
        if not label.is_file():
            if self.require_labels:
                raise PcsegFileNotFoundError(f"label file not found for {path}: {label}")
            return None
        return label

    def describe(self, index: int) -> str:
        return str(self.items[index][0])

    def load_cloud(self, index: int):
        from pcseg.io import read_labels, read_points

        path, label_path = self.items[index]
        if path.suffix.lower() == ".npy":
            cloud = _read_xyz_npy(path)
        else:
            cloud = read_points(path)
            if path.suffix.lower() in (".las", ".laz"):
                _las_to_metres(cloud, path)
        if label_path is not None and label_path.suffix == ".label":  # raw ids + instance ids
            labels, cloud.instance = read_labels(label_path, return_instance=True, num_points=len(cloud))
        elif label_path is not None:
            labels = read_labels(label_path, num_points=len(cloud))
        else:
            labels = cloud.labels
            if labels is None and self.require_labels:
                raise PcsegValueError(f"{path}: no labels in the file and no dataset.label_replace to find a label file")
        if labels is not None:
            if not self.labels_are_train_ids or (label_path is not None and label_path.suffix == ".label"):
                labels = self.to_train(labels, label_path or path)
            cloud.labels = np.asarray(labels, dtype=np.int64)
        return cloud


def _las_to_metres(cloud, path) -> None:
    """Scale a LAS cloud read from ``path`` to metres in place when its CRS is in feet (US State
    Plane tiles), as ``pcseg segment --format las`` does before the model sees a tile."""
    from pcseg.io.las import las_metres_per_unit, open_las, scale_to_metres

    with open_las(path) as reader:
        metres = las_metres_per_unit(reader.header)
    cloud.xyz, cloud.offset = scale_to_metres(cloud.xyz, cloud.offset, metres)


def _read_xyz_npy(path):
    """(N, 3+) float arrays: x, y, z, then intensity when a 4th column exists."""
    from pcseg.io import PointCloud

    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise PointCloudFormatError(f"{path}: not a readable .npy array ({exc})") from None
    if data.ndim != 2 or data.shape[1] < 3:
        raise PointCloudFormatError(f"{path}: expected an (N, 3) or (N, 4) array of points, got shape {data.shape}")
    intensity = data[:, 3] if data.shape[1] >= 4 else None
    return PointCloud(xyz=data[:, :3], intensity=intensity, source=str(path))
