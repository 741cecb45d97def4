"""The in-memory point cloud every reader returns and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from pcseg.errors import PointCloudFormatError

# optional per-point fields: name -> (dtype, trailing shape)
_FIELDS = {
    "intensity": (np.float32, ()),
    "rgb": (np.float32, (3,)),
    "normals": (np.float32, (3,)),
    "labels": (np.int64, ()),
    "instance": (np.int64, ()),
    "pixels": (np.int32, (2,)),
}


@dataclass
class PointCloud:
    """A cloud of N points with optional per-point fields (numpy arrays, no torch).

    Attributes:
        xyz: float32 (N, 3) coordinates in metres, local to ``offset``.
        intensity: float32 (N,) or None, sensor units as read (KITTI: 0..1, LAS: 0..65535).
        rgb: float32 (N, 3) in [0, 1] or None.
        normals: float32 (N, 3) or None.
        labels: int64 (N,) semantic ids as stored in the source (raw ids) or None.
        instance: int64 (N,) instance ids or None.
        pixels: int32 (N, 2) image (u, v) of each point, for clouds back-projected from depth.
        offset: float64 (3,) added to ``xyz`` to give world coordinates. Georeferenced data
            (LAS at x ~ 6e5 m) would lose centimetres in float32; the offset keeps them.
        source: where the cloud came from (a path), for messages.
    """

    xyz: np.ndarray
    intensity: np.ndarray | None = None
    rgb: np.ndarray | None = None
    normals: np.ndarray | None = None
    labels: np.ndarray | None = None
    instance: np.ndarray | None = None
    pixels: np.ndarray | None = None
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.float64))
    source: str = ""

    def __post_init__(self):
        where = f" ({self.source})" if self.source else ""
        xyz = np.asarray(self.xyz)
        if xyz.ndim != 2 or xyz.shape[1] != 3:
            raise PointCloudFormatError(f"xyz must have shape (N, 3), got {xyz.shape}{where}")
        self.xyz = np.ascontiguousarray(xyz, dtype=np.float32)
        n = len(self.xyz)
        for name, (dtype, tail) in _FIELDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value)
            if value.shape != (n, *tail):
                raise PointCloudFormatError(
                    f"{name} must have shape {(n, *tail)} to match {n} points, got {value.shape}{where}"
                )
            setattr(self, name, np.ascontiguousarray(value, dtype=dtype))
        self.offset = np.asarray(self.offset, dtype=np.float64).reshape(3)

    def __len__(self) -> int:
        return len(self.xyz)

    @property
    def field_names(self) -> list[str]:
        """Names of the optional fields present, e.g. ``['intensity', 'labels']``."""
        return [name for name in _FIELDS if getattr(self, name) is not None]

    def world_xyz(self) -> np.ndarray:
        """float64 (N, 3) world coordinates: ``xyz + offset`` computed in float64."""
        return self.xyz.astype(np.float64) + self.offset

    def select(self, mask_or_index) -> "PointCloud":
        """A new cloud with the points picked by a boolean mask or an index array."""
        kwargs = {f.name: getattr(self, f.name) for f in fields(self)}
        kwargs["xyz"] = self.xyz[mask_or_index]
        for name in _FIELDS:
            if kwargs[name] is not None:
                kwargs[name] = kwargs[name][mask_or_index]
        return PointCloud(**kwargs)

    def __repr__(self) -> str:
        extra = ", ".join(self.field_names) or "no fields"
        where = f", source={self.source!r}" if self.source else ""
        if len(self):
            lo, hi = self.xyz.min(0) + self.offset, self.xyz.max(0) + self.offset
            bounds = f", bounds=[{', '.join(f'{v:.2f}' for v in lo)}]..[{', '.join(f'{v:.2f}' for v in hi)}]"
        else:
            bounds = ""
        return f"PointCloud({len(self)} points, {extra}{bounds}{where})"
