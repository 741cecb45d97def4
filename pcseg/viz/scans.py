"""Scans to view: one file, or a SemanticKITTI-style sequence folder stepped through lazily."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pcseg.errors import PcsegFileNotFoundError, PcsegValueError

POINT_SUFFIXES = (".bin", ".npy", ".npz", ".ply", ".pcd", ".las", ".laz", ".h5", ".hdf5", ".txt", ".xyz", ".pts")
LABEL_SUFFIXES = (".label", ".npy")

@dataclass
class Scan:
    """A scan on disk, loaded on demand. ``labels``/``pred``: label files or None;
    ``label_ids``/``pred_ids``: ``"raw"`` (mapped with the label map) or ``"train"``."""

    name: str
    points: Path
    labels: Path | None = None
    pred: Path | None = None
    label_ids: str = "raw"
    pred_ids: str = "raw"

    def load(self, label_map=None):
        """(PointCloud, labels int64 (N,) train ids or None, pred int64 (N,) train ids or None)."""
        from pcseg.io import read_labels, read_points

        cloud = read_points(self.points)

        def ids(path, kind, what):
            if path is None:
                return None
            values = read_labels(path, num_points=len(cloud))
            if kind == "raw":
                if label_map is None:
                    raise PcsegValueError(f"{path}: raw {what} ids need a label map (--label-map)")
                return label_map.to_train(values)
            return values

        return cloud, ids(self.labels, self.label_ids, "label"), ids(self.pred, self.pred_ids, "prediction")

def _labels_for(folder: Path | None, stem: str) -> Path | None:
    if folder is None:
        return None
    for suffix in LABEL_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None

def find_scans(path, labels=None, pred=None, label_ids: str = "raw", pred_ids: str = "raw") -> list[Scan]:
    """Scans under ``path``.

    ``path`` a point-cloud file: one scan with the ``labels``/``pred`` files given. ``path`` a
    sequence folder (``velodyne/*.bin``, optional ``labels/``, ``predictions/``) or a folder of
    point files: one scan per file, labels and predictions matched by file stem from
    ``labels``/``pred`` (folders) or the sequence's own ``labels/`` and ``predictions/``.
    """
    path = Path(path)
    if not path.exists():
        raise PcsegFileNotFoundError(f"point cloud path not found: {path}")
    if path.is_file():
        for name, value in (("labels", labels), ("pred", pred)):
            if value is not None and not Path(value).is_file():
                raise PcsegFileNotFoundError(f"{name} file not found: {value}")
        return [Scan(path.stem, path, Path(labels) if labels else None, Path(pred) if pred else None,
                     label_ids, pred_ids)]
    cloud_dir = path / "velodyne" if (path / "velodyne").is_dir() else path
    files = sorted(p for p in cloud_dir.iterdir() if p.is_file() and p.suffix.lower() in POINT_SUFFIXES)
    if not files:
        raise PcsegFileNotFoundError(f"no point cloud files ({', '.join(POINT_SUFFIXES)}) in {cloud_dir}")
    label_dir = Path(labels) if labels else (path / "labels" if (path / "labels").is_dir() else None)
    pred_dir = Path(pred) if pred else (path / "predictions" if (path / "predictions").is_dir() else None)
    for name, folder in (("labels", label_dir), ("pred", pred_dir)):
        if folder is not None and not folder.is_dir():
            raise PcsegValueError(f"{name} must be a folder when viewing the folder {path}: {folder}")
    return [Scan(p.stem, p, _labels_for(label_dir, p.stem), _labels_for(pred_dir, p.stem), label_ids, pred_ids)
            for p in files]

def load_scene(scan: Scan, label_map=None):
    """(SceneData, PointCloud) of a scan, ready for :mod:`pcseg.viz.render` functions."""
    from pcseg.viz.render import scene_data

    cloud, labels, pred = scan.load(label_map)
    return scene_data(cloud, labels, pred, label_map), cloud
