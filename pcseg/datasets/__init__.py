"""Datasets: scans on disk (or generated) -> augmented, featurised samples -> ragged batches.

- :class:`SemanticKITTIDataset`, :class:`SyntheticDataset`, :class:`S3DISDataset`,
  :class:`ScanNetDataset`, :class:`FolderDataset` (all :class:`ScanDataset`), built from a config by
  :func:`pcseg.engine.builders.build_dataset`.
- :func:`collate_ragged` (batches with ``offsets``), :func:`seed_worker`, :class:`EpochSampler`.
"""

from pcseg.datasets.base import ScanDataset
from pcseg.datasets.concat import ConcatScans
from pcseg.datasets.collate import collate_ragged, seed_worker
from pcseg.datasets.features import FEATURE_WIDTHS, build_features, feature_width
from pcseg.datasets.folder import FolderDataset
from pcseg.datasets.s3dis import S3DISDataset
from pcseg.datasets.scannet import ScanNetDataset
from pcseg.datasets.sampler import EpochSampler
from pcseg.datasets.semantickitti import SemanticKITTIDataset
from pcseg.datasets.synthetic import SyntheticDataset

__all__ = [
    "ScanDataset", "SemanticKITTIDataset", "SyntheticDataset", "S3DISDataset", "ScanNetDataset", "FolderDataset", "ConcatScans",
    "EpochSampler", "collate_ragged", "seed_worker", "FEATURE_WIDTHS", "build_features", "feature_width",
]
