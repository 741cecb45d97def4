"""``Segmenter``: a trained checkpoint -> per-point labels, the Python API users call.

    seg = pcseg.Segmenter.from_checkpoint("runs/kitti/best.pt")
    labels = seg(cloud)                      # int64 (N,) train ids 0..C-1
    raw = seg.label_map.to_raw(labels)       # raw ids, as .label files store them
    proba = seg.predict_proba(cloud)         # float32 (N, C)
    semantic, instance = seg.panoptic(cloud)  # models with an instance head (PanopticMinkUNet)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pcseg.errors import PcsegValueError


class Segmenter:
    """Labels every point of a cloud with a trained model.

    Args:
        model: a model following the protocol (``forward_ragged``), in eval mode.
        label_map: :class:`pcseg.io.LabelMap` of the checkpoint.
        features: feature names the model was trained with (``["xyz", "intensity"]``).
        device: ``"cpu"`` or ``"cuda"``.
        tta: test-time augmentation: average class probabilities over this many rotations about
            z, each also mirrored in y (``tta=4`` -> 8 passes). 0/1/False = a single pass.
        max_points: clouds with more points are split into spatial chunks of at most this many
            core points, each run with ``chunk_margin`` metres of neighbouring context.
        chunk_margin: context margin in metres around each chunk.
        num_points, block_size: how a point model was fed in training (``dataset.num_points``,
            ``dataset.block_size``); clouds are then run in random pieces of ``num_points``
            points (see :mod:`pcseg.engine.inference`). None for voxel models.
        threads: intra-op torch threads for each call; None (or ``"auto"``) chooses the cores
            other processes leave free, at most torch's own setting, re-checked at most once a
            second (:func:`pcseg.threads.auto_threads`). torch's setting is restored after the call.
        recenter: move a scan stored away from its sensor (a map frame) back into the sensor
            frame before labeling it (:mod:`pcseg.datasets.sensor_frame`); labels stay per
            point. :meth:`from_checkpoint` takes it from the checkpoint's ``dataset.recenter``.
    """

    def __init__(self, model, label_map, features, device="cpu", tta=0, max_points=400_000, chunk_margin=2.0,
                 num_points=None, block_size=None, threads=None, recenter=False):
        from pcseg.threads import parse_threads

        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.label_map = label_map
        self.features = list(features)
        self.tta = int(tta or 0)
        self.max_points = int(max_points)
        self.chunk_margin = float(chunk_margin)
        self.num_points = num_points
        self.block_size = block_size
        self.recenter = bool(recenter)
        self.threads = parse_threads(threads, "threads")
        self._auto = None  # ThreadChooser of the automatic setting, made on first use
        self.config: dict = {}

    @classmethod
    def from_checkpoint(cls, path, device="cpu", **options) -> "Segmenter":
        """Load a checkpoint written by ``pcseg train``; ``options`` as in the constructor."""
        from pcseg.engine.checkpoint import load_checkpoint, model_from_checkpoint

        device = str(device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise PcsegValueError(f"device {device!r} requested but CUDA is not available")
        payload = load_checkpoint(path, map_location="cpu")
        model, label_map = model_from_checkpoint(payload, source=str(path))
        trained = payload["config"]["dataset"]
        options.setdefault("num_points", trained.get("num_points"))
        options.setdefault("block_size", trained.get("block_size"))
        options.setdefault("recenter", bool(trained.get("recenter")))
        if options.get("chunk_margin") is None:
            from pcseg.datasets.features import context_margin

            options["chunk_margin"] = context_margin(trained["features"])
        seg = cls(model, label_map, trained["features"], device=device, **options)
        seg.config = payload["config"]
        seg.checkpoint_metrics = payload.get("metrics") or {}
        return seg

    @property
    def num_classes(self) -> int:
        return self.label_map.num_classes

    @property
    def class_names(self) -> list[str]:
        return list(self.label_map.class_names)

    # ------------------------------------------------------------------ public calls
    def __call__(self, points) -> np.ndarray:
        """int64 (N,) train ids for every point; never an ignored id (e.g. SemanticKITTI 0).

        ``points``: a :class:`pcseg.io.PointCloud`, a file path, or an array (N, 3) xyz /
        (N, 3 + k) xyz followed by the extra features in config order (e.g. intensity).
        Equal to ``predict_proba(points).argmax(1)``; without TTA the argmax is taken per voxel
        (for voxel models) and no (N, C) array is built.
        """
        if self.tta > 1:
            return self.predict_proba(points).argmax(axis=1).astype(np.int64)
        from pcseg.engine.inference import predict_labels

        cloud = self._checked_cloud(points)
        labels = np.empty(len(cloud), dtype=np.int64)
        with self._threads():
            for core, context, sub in self._pieces(cloud):
                xyz, feats, offsets = self._tensors(sub, sub.xyz)
                part = predict_labels(self.model, xyz, feats, offsets, self.label_map.ignore_index,
                                      self.num_points, self.block_size).cpu().numpy()
                labels[core] = part if context is None else part[np.searchsorted(context, core)]
        return labels

    def predict_proba(self, points) -> np.ndarray:
        """float32 (N, C) class probabilities (ignored classes get 0), rows sum to 1."""
        cloud = self._checked_cloud(points)
        proba = np.zeros((len(cloud), self.num_classes), dtype=np.float32)
        with self._threads():
            for core, context, sub in self._pieces(cloud):
                part = self._proba_tta(sub)
                proba[core] = part if context is None else part[np.searchsorted(context, core)]
        return proba

    @property
    def is_panoptic(self) -> bool:
        """Whether the model has an instance head (then :meth:`panoptic` works)."""
        from pcseg.engine.panoptic import is_panoptic

        return is_panoptic(self.model)

    def panoptic(self, points) -> tuple[np.ndarray, np.ndarray]:
        """``(semantic int64 (N,) train ids, instance int64 (N,))`` for every point.

        Instance ids are 0 on stuff classes and 1, 2, ... on the things the model found. The
        whole cloud runs in one pass (no chunks, no test-time augmentation), so instances never
        straddle chunk borders. ``points`` as in :meth:`__call__`.
        """
        from pcseg.datasets.features import build_features
        from pcseg.engine.panoptic import predict_panoptic, require_panoptic

        require_panoptic(self.model, "Segmenter.panoptic")
        cloud = self._checked_cloud(points)
        feats = build_features(cloud.xyz, cloud, self.features)
        semantic, instance = predict_panoptic(
            self.model,
            torch.from_numpy(np.ascontiguousarray(cloud.xyz, dtype=np.float32)).to(self.device),
            torch.from_numpy(feats).to(self.device),
            torch.tensor([len(cloud)], dtype=torch.int64, device=self.device),
            self.label_map.ignore_index,
        )
        return semantic.cpu().numpy().astype(np.int64), instance.cpu().numpy().astype(np.int64)

    # ------------------------------------------------------------------ internals
    def _as_cloud(self, points):
        from pcseg.io import PointCloud

        if isinstance(points, PointCloud):
            return points
        if isinstance(points, (str, Path)):
            from pcseg.io import read_points

            return read_points(points)
        if isinstance(points, torch.Tensor):
            points = points.detach().cpu().numpy()
        array = np.asarray(points)
        if array.ndim != 2 or array.shape[1] < 3:
            raise PcsegValueError(f"points must be a PointCloud, a path or an (N, 3+) array, got shape {array.shape}")
        extra = [f for f in self.features if f != "xyz"]
        fields = {}
        if array.shape[1] > 3:
            if extra[:1] == ["intensity"]:
                fields["intensity"] = array[:, 3]
            elif extra[:1] == ["rgb"] and array.shape[1] >= 6:
                fields["rgb"] = array[:, 3:6]
        return PointCloud(xyz=array[:, :3].astype(np.float32), **fields)

    def _checked_cloud(self, points):
        from pcseg.datasets.features import build_features

        cloud = self._as_cloud(points)
        if len(cloud) == 0:
            raise PcsegValueError(f"cannot segment an empty cloud{_where(cloud)}: it has no points")
        if cloud.rgb is None and "rgb" in self.features and self._colour_free_ok():
            import dataclasses

            from pcseg.datasets.transforms import NO_COLOR

            # a model trained with colour dropout saw colour-free rooms as all mid-grey
            cloud = dataclasses.replace(cloud, rgb=np.full((len(cloud), 3), NO_COLOR, dtype=np.float32))
        build_features(cloud.xyz[:1], cloud, self.features, index=np.zeros(1, np.int64))  # fields present?
        if self.recenter:
            from pcseg.datasets.sensor_frame import to_sensor_frame

            cloud = to_sensor_frame(cloud)
        return cloud

    def _colour_free_ok(self) -> bool:
        """Whether the checkpoint was trained with colour dropout (``augment.color_drop`` > 0)."""
        augment = (self.config.get("dataset") or {}).get("augment") or {}
        return float(augment.get("color_drop") or 0.0) > 0

    def _threads(self):
        from pcseg.threads import ThreadChooser, torch_threads

        if self.device.type != "cpu":
            return torch_threads(torch.get_num_threads())
        if self.threads is not None:
            return torch_threads(self.threads)
        limit = torch.get_num_threads()
        if self._auto is None or self._auto.limit != limit:
            self._auto = ThreadChooser(None, every=1.0, limit=limit)
        return torch_threads(self._auto.choose())

    def _pieces(self, cloud):
        """Yield (core, context, sub-cloud): ``core`` the points labelled from this piece, ``context``
        the sorted indices of ``sub`` in ``cloud`` (None when ``sub`` is the whole cloud)."""
        if len(cloud) <= self.max_points:
            yield slice(None), None, cloud
            return
        for core, context in self._chunks(cloud.xyz):
            yield core, context, cloud.select(context)

    def _chunks(self, xyz):
        """Yield (core, context) sorted int64 index arrays covering every point once as core."""
        n = len(xyz)
        if n <= self.max_points:
            everything = np.arange(n)
            yield everything, everything
            return
        stack = [np.arange(n)]
        while stack:
            idx = stack.pop()
            if len(idx) <= self.max_points:
                lo, hi = xyz[idx].min(0) - self.chunk_margin, xyz[idx].max(0) + self.chunk_margin
                inside = np.flatnonzero(np.all((xyz >= lo) & (xyz <= hi), axis=1))
                yield np.sort(idx), inside
                continue
            pts = xyz[idx]
            axis = int(np.argmax(pts.max(0) - pts.min(0)))
            order = np.argsort(pts[:, axis], kind="stable")
            half = len(idx) // 2
            stack += [idx[order[:half]], idx[order[half:]]]

    def _tensors(self, cloud, xyz):
        """(xyz (n,3), feats (n,C), offsets (1,)) tensors on the device for points ``xyz`` of ``cloud``."""
        from pcseg.datasets.features import build_features

        xyz = np.ascontiguousarray(xyz, dtype=np.float32)
        feats = build_features(xyz, cloud, self.features)
        return (torch.from_numpy(xyz).to(self.device), torch.from_numpy(feats).to(self.device),
                torch.tensor([len(xyz)], dtype=torch.int64, device=self.device))

    @torch.no_grad()
    def _proba_tta(self, cloud) -> np.ndarray:
        from pcseg.engine.inference import predict_proba

        views = [(0.0, False)]
        if self.tta > 1:
            views = [(2 * np.pi * k / self.tta, flip) for k in range(self.tta) for flip in (False, True)]
        total = None
        for angle, flip in views:
            xyz = cloud.xyz
            if angle:
                c, s = np.cos(angle), np.sin(angle)
                xyz = xyz @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float32).T
            if flip:
                xyz = xyz * np.array([1, -1, 1], dtype=np.float32)
            proba = predict_proba(self.model, *self._tensors(cloud, xyz), self.label_map.ignore_index,
                                  self.num_points, self.block_size)
            total = proba if total is None else total.add_(proba)
        if len(views) > 1:
            total /= len(views)
        return total.cpu().numpy().astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return (f"Segmenter({type(self.model).__name__}, {self.num_classes} classes ({self.label_map.name}), "
                f"features={self.features}, device={self.device})")


def _where(cloud) -> str:
    return f" ({cloud.source})" if getattr(cloud, "source", "") else ""
