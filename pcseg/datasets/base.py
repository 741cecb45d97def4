"""The dataset base class every concrete dataset (SemanticKITTI, synthetic, S3DIS, folder) shares.

A dataset is a list of scans. ``__getitem__`` accepts an index or an ``(epoch, index)`` pair (what
:class:`~pcseg.datasets.sampler.EpochSampler` yields): the augmentation of a sample is drawn from a
generator seeded with ``(seed, epoch, index)``, so results do not depend on worker processes or
on where a run was resumed.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from pcseg.datasets import transforms as T
from pcseg.datasets.features import build_features, feature_width
from pcseg.errors import ConfigError, PcsegValueError


class ScanDataset(Dataset):
    """Base class. Subclasses set ``self.items`` (one entry per scan, used in messages) and
    implement :meth:`load_cloud`.

    Args:
        label_map: :class:`pcseg.io.LabelMap` (raw ids <-> train ids, class names).
        features: feature names, e.g. ``["xyz", "intensity"]``.
        training: apply augmentations, voxel subsampling and ``num_points`` sampling.
        num_points: training scans are sampled to exactly this many points (PointNet++), or None.
        voxel_size: training scans keep one random point per voxel of this edge (m), or None.
        block_size: training samples are the points of a random square xy block of this edge (m)
            centred on a random point (PointNet++ on indoor rooms), or None.
        augment: dict of augmentation settings (see ``pcseg.engine.config.AUGMENT_DEFAULTS``).
        augment_seed: base seed of the per-sample generators (the builder passes ``train.seed``);
            ``seed`` is its former name, still accepted.
        max_eval_points: evaluation scans larger than this are randomly subsampled, or None.
        cache: keep loaded scans in memory (per process).
        recenter: move scans stored away from their sensor (a map frame) back into the sensor
            frame when loaded (:mod:`pcseg.datasets.sensor_frame`; config ``dataset.recenter``).
    """

    def __init__(self, label_map, features, *, training=False, num_points=None, voxel_size=None,
                 block_size=None, augment=None, augment_seed=0, max_eval_points=None, cache=False, seed=None,
                 recenter=False):
        self.label_map = label_map
        self.features = list(features)
        self.in_channels = feature_width(self.features)
        self.training = training
        self.num_points = num_points
        self.voxel_size = voxel_size
        self.block_size = block_size
        self.augment = dict(augment or {})
        self.augment_seed = int(augment_seed if seed is None else seed)
        self.max_eval_points = max_eval_points
        self._cache = {} if cache else None
        self.recenter = bool(recenter)
        self.items: list = []

    # ----------------------------------------------------------------- subclass API
    def load_cloud(self, index: int):
        """Return scan ``index`` as a PointCloud whose ``labels`` are train ids (int64) or None."""
        raise NotImplementedError

    def describe(self, index: int) -> str:
        """A short name of scan ``index`` for messages (its path by default)."""
        return str(self.items[index])

    # ----------------------------------------------------------------- helpers
    def __len__(self) -> int:
        return len(self.items)

    def cloud(self, index: int):
        """Scan ``index`` as a PointCloud with train-id labels, checked (cached when enabled)."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        cloud = self.load_cloud(index)
        if len(cloud) == 0:
            raise PcsegValueError(f"scan {self.describe(index)} has no points")
        if self.recenter:
            from pcseg.datasets.sensor_frame import to_sensor_frame

            cloud = to_sensor_frame(cloud)
        if cloud.labels is not None and len(cloud.labels):
            top = int(cloud.labels.max())
            if cloud.labels.min() < 0 or top >= self.label_map.num_classes:
                raise PcsegValueError(
                    f"scan {self.describe(index)}: train id {top} outside the label map's "
                    f"0..{self.label_map.num_classes - 1} ({self.label_map.name}); wrong label map?"
                )
        if self._cache is not None:
            self._cache[index] = cloud
        return cloud

    def check_features(self, index: int = 0) -> None:
        """Refuse up front (ConfigError naming the scan) when scan ``index`` lacks a field the
        feature list needs, e.g. ``rgb`` on LiDAR scans, instead of failing at the first batch."""
        if len(self):
            cloud = self.cloud(index)
            try:
                build_features(cloud.xyz[:1], cloud, self.features, index=np.zeros(1, dtype=np.int64))
            except PcsegValueError as exc:
                raise ConfigError(f"dataset.features {self.features}: {exc}") from None

    def to_train(self, raw, where) -> np.ndarray:
        """Raw ids -> train ids with the label map, naming ``where`` on failure."""
        try:
            return self.label_map.to_train(raw)
        except PcsegValueError as exc:
            raise PcsegValueError(f"labels of {where}: {exc}") from None

    def label_histogram(self, max_scans: int = 64) -> np.ndarray:
        """int64 (num_classes,) label counts over up to ``max_scans`` evenly spaced scans."""
        counts = np.zeros(self.label_map.num_classes, dtype=np.int64)
        picks = np.unique(np.linspace(0, len(self) - 1, min(len(self), max_scans)).astype(np.int64))
        for i in picks:
            labels = self.cloud(int(i)).labels
            if labels is not None:
                counts += np.bincount(labels, minlength=self.label_map.num_classes)
        return counts

    def __getitem__(self, key) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        index = int(index)
        rng = np.random.default_rng([self.augment_seed, int(epoch), index])
        cloud = self.cloud(index)
        xyz, labels, instance = cloud.xyz, cloud.labels, cloud.instance
        if labels is None:
            labels = np.full(len(cloud), -1, dtype=np.int64)
        if instance is None:
            instance = np.zeros(len(cloud), dtype=np.int64)
        feats_source, rows = cloud, np.arange(len(cloud), dtype=np.int64)

        if self.training:
            aug = self.augment
            mixers = (
                (aug.get("scan_mix", 0.0), lambda a, b: _mix(a, b, int(aug.get("scan_mix_bands", 6)), rng)),
                (aug.get("polar_mix", 0.0), lambda a, b: _polar_mix(a, b, aug.get("paste_classes") or [], rng)),
            )
            for probability, mixer in mixers:
                if probability > 0 and len(self) > 1 and rng.random() < probability:
                    other = int(rng.integers(0, len(self) - 1))
                    other += other >= index  # any scan but this one
                    feats_source = mixer(feats_source, self.cloud(other))
                    xyz, labels = feats_source.xyz, feats_source.labels
                    instance = (feats_source.instance if feats_source.instance is not None
                                else np.zeros(len(xyz), np.int64))
                    rows = np.arange(len(xyz), dtype=np.int64)
            if self.block_size:
                rows = rows[T.block_crop(xyz[rows], self.block_size, rng)]
            if aug.get("dropout", 0.0) > 0:
                rows = rows[T.dropout_index(len(rows), aug["dropout"], rng)]
            if self.voxel_size:
                rows = rows[T.voxel_subsample(xyz[rows], self.voxel_size, rng)]
            if self.num_points:
                rows = rows[T.sample_points(len(rows), self.num_points, rng)]
            xyz = xyz[rows]
            if aug.get("rotate_z"):
                xyz = T.rotate_z(xyz, rng)
            if aug.get("tilt", 0.0) > 0:
                xyz = T.random_tilt(xyz, aug["tilt"], rng)
            if aug.get("scale"):
                xyz = T.random_scale(xyz, *aug["scale"], rng)
            if aug.get("flip"):
                xyz = T.random_flip(xyz, rng)
            if aug.get("jitter", 0.0) > 0:
                xyz = T.jitter(xyz, aug["jitter"], rng)
        else:
            if self.max_eval_points and len(rows) > self.max_eval_points:
                rows = np.sort(rng.choice(len(rows), self.max_eval_points, replace=False)).astype(np.int64)
            xyz = xyz[rows]
        feats = build_features(xyz, feats_source, self.features, rows)
        if self.training and "rgb" in self.features and (self.augment.get("color_jitter") or self.augment.get("color_drop")):
            at = sum(feature_width([name]) for name in self.features[:self.features.index("rgb")])
            feats[:, at:at + 3] = T.color_jitter(feats[:, at:at + 3], float(self.augment.get("color_jitter") or 0.0),
                                                 float(self.augment.get("color_drop") or 0.0), rng)
        return {
            "xyz": np.ascontiguousarray(xyz, dtype=np.float32),
            "feats": feats,
            "labels": np.ascontiguousarray(labels[rows], dtype=np.int64),
            "instance": np.ascontiguousarray(instance[rows], dtype=np.int64),
            "index": rows,
            "scan": index,
        }


def _joined_fields(pieces, names) -> dict:
    """``{name: rows of every (cloud, rows) piece, concatenated}`` for the ``names`` that every
    piece's cloud has."""
    return {name: np.concatenate([getattr(cloud, name)[rows] for cloud, rows in pieces])
            for name in names if all(getattr(cloud, name) is not None for cloud, _ in pieces)}


def _mix(a, b, bands, rng):
    """A PointCloud made of alternating inclination bands of clouds ``a`` and ``b``."""
    from pcseg.io import PointCloud

    keep_a, keep_b = T.laser_mix(a.xyz, b.xyz, bands, rng)
    if len(keep_a) + len(keep_b) == 0:
        return a
    fields = _joined_fields([(a, keep_a), (b, keep_b)], ("intensity", "rgb", "normals", "labels"))
    if a.instance is not None and b.instance is not None:
        # b's instances renumbered after a's so that the two scans' ids never collide
        shift = int(a.instance.max(initial=0)) + 1
        fields["instance"] = np.concatenate([a.instance[keep_a], np.where(b.instance[keep_b] > 0,
                                                                          b.instance[keep_b] + shift, 0)])
    return PointCloud(xyz=np.concatenate([a.xyz[keep_a], b.xyz[keep_b]]), source=f"mix({a.source}, {b.source})",
                      **fields)


def _polar_mix(a, b, paste_classes, rng):
    """A PointCloud: ``a`` with half a turn swapped in from ``b`` plus ``b``'s pasted objects."""
    from pcseg.io import PointCloud

    if a.labels is None or b.labels is None:
        return a
    keep_a, sector_b, paste_b, angles = T.polar_mix(a.xyz, a.labels, b.xyz, b.labels, paste_classes, rng)
    xyz = np.concatenate([a.xyz[keep_a], b.xyz[sector_b], T.rotate_rows_z(b.xyz[paste_b], angles)])
    if len(xyz) == 0:
        return a
    # normals are left out: the pasted copies are rotated and theirs would be wrong
    fields = _joined_fields([(a, keep_a), (b, sector_b), (b, paste_b)], ("intensity", "rgb", "labels"))
    if a.instance is not None and b.instance is not None:
        # b's instances after a's, and each pasted copy an instance of its own
        shift, span = int(a.instance.max(initial=0)) + 1, int(b.instance.max(initial=0)) + 1
        copy = np.searchsorted(np.unique(angles), angles) + 1 if len(angles) else np.zeros(0, np.int64)
        moved = lambda ids, k: np.where(ids > 0, ids + shift + k * span, 0)  # noqa: E731
        fields["instance"] = np.concatenate([a.instance[keep_a], moved(b.instance[sector_b], 0),
                                             moved(b.instance[paste_b], copy)])
    return PointCloud(xyz=xyz, source=f"polarmix({a.source}, {b.source})", **fields)
