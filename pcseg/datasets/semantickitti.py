"""SemanticKITTI layout: ``ROOT/sequences/SS/velodyne/NNNNNN.bin`` (+ ``labels/NNNNNN.label``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcseg.datasets.base import ScanDataset
from pcseg.errors import PcsegFileNotFoundError, PcsegValueError

# the official splits
SPLITS = {
    "train": ["00", "01", "02", "03", "04", "05", "06", "07", "09", "10"],
    "val": ["08"],
    "test": [f"{s:02d}" for s in range(11, 22)],
}


def sequence_names(split) -> list[str]:
    """A split given as ``train``/``val``/``test`` or a list of sequence numbers -> ``["08", ...]``."""
    if isinstance(split, str) and split in SPLITS:
        return list(SPLITS[split])
    if isinstance(split, (str, int)):
        split = [split]
    return [f"{int(s):02d}" if str(s).isdigit() else str(s) for s in split]


class SemanticKITTIDataset(ScanDataset):
    """Scans of the listed sequences under ``root``; labels mapped to train ids by the label map.

    Args:
        root: folder holding ``sequences/``.
        split: ``"train"``, ``"val"``, ``"test"`` or a list of sequences (``[0, 1]``, ``["08"]``).
        require_labels: fail when a scan has no label file (training/evaluation).
        **kwargs: :class:`~pcseg.datasets.base.ScanDataset` options.
    """

    def __init__(self, root, split, label_map, features, require_labels=True, **kwargs):
        super().__init__(label_map, features, **kwargs)
        self.root = Path(root)
        if not (self.root / "sequences").is_dir():
            raise PcsegFileNotFoundError(f"SemanticKITTI root {self.root}: no sequences/ folder (dataset.root)")
        self.sequences = sequence_names(split)
        for seq in self.sequences:
            folder = self.root / "sequences" / seq / "velodyne"
            if not folder.is_dir():
                raise PcsegFileNotFoundError(f"SemanticKITTI sequence folder not found: {folder}")
            for scan in sorted(folder.glob("*.bin")):
                label = self.root / "sequences" / seq / "labels" / (scan.stem + ".label")
                if require_labels and not label.is_file():
                    raise PcsegFileNotFoundError(f"label file not found for {scan}: {label}")
                self.items.append((scan, label if label.is_file() else None))
        if not self.items:
            raise PcsegValueError(f"SemanticKITTI root {self.root}: no scans in sequences {self.sequences}")

    def describe(self, index: int) -> str:
        return str(self.items[index][0])

    def load_cloud(self, index: int):
        from pcseg.io import PointCloud, read_labels
        from pcseg.errors import PointCloudFormatError

        scan, label = self.items[index]
        size = scan.stat().st_size
        if size % 16:
            raise PointCloudFormatError(f"{scan}: {size} bytes is not a whole number of (x, y, z, intensity) float32 records")
        data = np.fromfile(scan, dtype="<f4").reshape(-1, 4)
        labels = instance = None
        if label is not None:
            raw, instance = read_labels(label, return_instance=True, num_points=len(data))
            labels = self.to_train(raw, label)
        return PointCloud(xyz=data[:, :3], intensity=data[:, 3], labels=labels, instance=instance, source=str(scan))
