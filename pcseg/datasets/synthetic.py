"""Synthetic LiDAR scans generated on the fly from seeds by :func:`pcseg.synth.lidar_scan`.

Scan ``i`` of a split is ``lidar_scan(seed=base + i)``; the validation split uses seeds offset
by 100000 so it never repeats a training scene. A written synthetic dataset (``pcseg synth``)
has the SemanticKITTI layout: read it with ``dataset.name: semantickitti``, or give
``dataset.root`` here, which does the same.
"""

from __future__ import annotations

from pcseg.datasets.base import ScanDataset
from pcseg.errors import PcsegValueError

VAL_SEED_OFFSET = 100_000


class SyntheticDataset(ScanDataset):
    """``count`` generated scans (cached in memory once generated).

    Args:
        count: number of scans in the split.
        base_seed: seed of scan 0 (scan i uses ``base_seed + i``).
        sensor: simulated sensor name passed to ``lidar_scan`` (e.g. ``"hdl64"``),
            ``"airborne"`` for :func:`pcseg.synth.airborne.airborne_tile` tiles (ASPRS codes), or
            ``"room_scan"`` for :func:`pcseg.synth.scene_scan.scene_scan` reconstructed rooms
            (ScanNet-like, NYU40 ids, xyz + rgb).
        scan: dict of :func:`~pcseg.synth.scene_scan.scene_scan` options for ``room_scan``
            (``voxel_size``, ``width``, ``views``), or None for its defaults.
        layouts: road types of vehicle scans (``urban``, ``rural``, ``highway``; see
            :mod:`pcseg.synth.road_types`), or None for urban streets only.
        ground: ranges of the streets' ground details (``curb_height: [low, mode, high]``,
            ``paved_roughness``, ``grass_roughness``, ``terrain_rise``, ``undulation``: ``[low, high]``;
            :func:`pcseg.synth.road_types.draw_ground`), or None.
        **kwargs: :class:`~pcseg.datasets.base.ScanDataset` options.
    """

    def __init__(self, count, base_seed, label_map, features, sensor="hdl64", scan=None, layouts=None, ground=None,
                 **kwargs):
        kwargs.setdefault("cache", True)
        super().__init__(label_map, features, **kwargs)
        if not isinstance(count, int) or count < 1:
            raise PcsegValueError(f"synthetic split size must be a positive integer scan count, got {count!r}")
        self.sensor = sensor
        self.scan = dict(scan or {})
        unknown = set(self.scan) - {"voxel_size", "width", "views"}
        if unknown or (self.scan and sensor != "room_scan"):
            raise PcsegValueError(f"dataset.scan: options {sorted(self.scan)} are for sensor room_scan and may be "
                                  f"voxel_size, width, views (got sensor {sensor!r})")
        if layouts is not None:
            from pcseg.synth.road_types import check_layouts

            if sensor in ("airborne", "room_scan"):
                raise PcsegValueError(f"dataset layouts {layouts!r} are road types of vehicle scans, not of sensor {sensor!r}")
            layouts = check_layouts(layouts)
        self.layouts = layouts
        if ground is not None:
            from pcseg.synth.road_types import check_ground

            ground = check_ground(ground)
        self.ground = ground
        self.items = [int(base_seed) + i for i in range(count)]

    def describe(self, index: int) -> str:
        return f"synthetic scan seed={self.items[index]} sensor={self.sensor}"

    def load_cloud(self, index: int):
        if self.sensor == "airborne":  # an airborne tile (ASPRS codes) instead of a vehicle scan
            from pcseg.synth.airborne import airborne_tile

            cloud = airborne_tile(seed=self.items[index])
        elif self.sensor == "room_scan":  # a reconstructed indoor room (NYU40 ids, rgb)
            from pcseg.synth.scene_scan import scene_scan

            cloud = scene_scan(self.items[index], **self.scan)
        else:
            from pcseg.synth import lidar_scan

            cloud = lidar_scan(seed=self.items[index], sensor=self.sensor, layouts=self.layouts, ground=self.ground)
        if cloud.labels is not None:
            cloud.labels = self.to_train(cloud.labels, self.describe(index))
        return cloud


def synthetic_dataset(root=None, *, split, label_map, features, stage="train", sensor="hdl64", seed=0,
                      require_labels=True, scan=None, layouts=None, ground=None, **options):
    """The ``synthetic`` config name: generated scans, or a folder written by ``pcseg synth``.

    Args:
        root: None to generate scans from seeds, or a folder in the SemanticKITTI layout.
        split: scan count (generated) or sequences (folder) of this stage.
        stage: ``train``, ``val`` or ``test``: generated validation scans use seeds offset by
            100000 and test scans by 200000, so they never repeat a training scene.
        sensor: simulated sensor (e.g. ``hdl64``, ``airborne``, ``room_scan``; config key ``dataset.sensor``).
        scan: ``room_scan`` options (config key ``dataset.scan``, e.g. ``{voxel_size: 0.04, width: 120}``).
        layouts: road types of generated vehicle scans (config key ``dataset.layouts``, e.g.
            ``[urban, rural, highway]``); None = urban streets.
        ground: ranges of the streets' ground details (config key ``dataset.ground``, e.g.
            ``{curb_height: [0.04, 0.1, 0.18], paved_roughness: [0, 0.03]}``); None = defaults.
        seed: seed of the first training scan (config key ``dataset.seed``).
        require_labels, options: as for :class:`~pcseg.datasets.semantickitti.SemanticKITTIDataset`
            / :class:`~pcseg.datasets.base.ScanDataset`.
    """
    if root is not None:
        from pcseg.datasets.semantickitti import SemanticKITTIDataset

        return SemanticKITTIDataset(root, split, label_map, features, require_labels=require_labels, **options)
    base = int(seed) + {"train": 0, "val": VAL_SEED_OFFSET, "test": 2 * VAL_SEED_OFFSET}[stage]
    return SyntheticDataset(split, base, label_map, features, sensor=sensor, scan=scan, layouts=layouts, ground=ground,
                            **options)
