"""``SparseTensor``: features on occupied voxels, plus the kernel-map cache a network shares.

Coordinates are int32 ``(N, 4)`` rows ``(batch, x, y, z)``. A tensor at ``stride`` s lives on the
grid of the stride-1 voxels divided by s (floor division), the convention of spconv: a stride-2
downsampling maps the voxel ``p`` to ``floor(p / 2)``. Negative coordinates are allowed; batch
indices must be ``0 <= b``. Duplicate coordinates are rejected (merge them first, e.g. with
``pcseg.ops.voxelize_batched`` + ``pcseg.ops.voxel_reduce``).
"""

from __future__ import annotations

import torch

from pcseg.errors import PcsegValueError

# Margin (in voxels) kept around the coordinate box of every hash key space, so that a neighbour
# query p + delta never wraps into another row of the linear key. Kernels/dilations larger than
# this are rejected when their map is built.
KEY_MARGIN = 16


class CoordIndex:
    """A coordinate set turned into int64 linear keys, searchable by key.

    Keys are ``((b * SX + x - x0) * SY + y - y0) * SZ + z - z0`` where ``(x0, y0, z0)`` is the
    box minimum minus :data:`KEY_MARGIN` and ``SX, SY, SZ`` the box sizes plus twice the margin,
    so ``key(p + d) == key(p) + dot(d, key_strides)`` for any ``|d| <= KEY_MARGIN``.
    """

    def __init__(self, coords: torch.Tensor, what: str = "coords"):
        c = coords.to(torch.int64)
        lo = c[:, 1:].amin(0) - KEY_MARGIN
        hi = c[:, 1:].amax(0) + KEY_MARGIN
        size = hi - lo + 1
        self.origin = lo  # (3,) int64
        self.size = size  # (3,) int64, SX SY SZ
        sx, sy, sz = (int(v) for v in size.tolist())
        num_batches = int(c[:, 0].max()) + 1
        if num_batches * sx * sy * sz >= 2**62:
            raise PcsegValueError(
                f"{what}: the coordinate box ({sx} x {sy} x {sz} voxels, {num_batches} batches) is "
                "too large to index; use a coarser voxel size"
            )
        self.key_strides = torch.tensor([sy * sz, sz, 1], dtype=torch.int64, device=c.device)
        self.batch_stride = sx * sy * sz
        self.keys = self.key_of(c)  # (N,) int64, in the row order of ``coords``
        self.sorted_keys, self.order = torch.sort(self.keys)
        if self.keys.numel() > 1:
            dup = self.sorted_keys[1:] == self.sorted_keys[:-1]
            if bool(dup.any()):
                first = int(torch.nonzero(dup)[0, 0])
                row_a, row_b = int(self.order[first]), int(self.order[first + 1])
                raise PcsegValueError(
                    f"{what}: duplicate coordinate {c[row_a].tolist()} at rows {row_a} and {row_b}; "
                    "a SparseTensor needs unique (batch, x, y, z) rows (merge duplicates with "
                    "pcseg.ops.voxelize_batched and pcseg.ops.voxel_reduce)"
                )

    def key_of(self, coords: torch.Tensor) -> torch.Tensor:
        """int64 keys (M,) of int coords (M, 4) in this index's key space (no bounds check)."""
        c = coords.to(torch.int64)
        rel = c[:, 1:] - self.origin
        return c[:, 0] * self.batch_stride + (rel * self.key_strides).sum(1)

    def lookup(self, query_keys: torch.Tensor) -> torch.Tensor:
        """Row index (int64, same shape as ``query_keys``) of each key, or -1 where absent."""
        pos = torch.searchsorted(self.sorted_keys, query_keys)
        pos = pos.clamp_(max=max(self.sorted_keys.numel() - 1, 0))
        found = self.sorted_keys[pos] == query_keys
        return torch.where(found, self.order[pos], torch.full_like(pos, -1))


class KernelMapCache:
    """Coordinates, coordinate indices and kernel maps of one forward pass, keyed by stride.

    Every ``SparseTensor`` derived from the same input shares one cache, so a U-Net builds each
    kernel map once: submanifold maps are keyed ``("subm", stride, kernel_size, dilation)`` and
    downsampling maps ``("down", stride, kernel_size, conv_stride, dilation)``; an inverse
    convolution reuses the downsampling map of the same key, transposed.
    """

    def __init__(self):
        self.coords: dict[int, torch.Tensor] = {}
        self.indices: dict[int, CoordIndex] = {}
        self.maps: dict[tuple, object] = {}

    def index(self, stride: int) -> CoordIndex:
        if stride not in self.indices:
            self.indices[stride] = CoordIndex(self.coords[stride], f"coords at stride {stride}")
        return self.indices[stride]


class SparseTensor:
    """Features on a sparse set of voxels.

    Args:
        feats: (N, C) float features, one row per voxel.
        coords: (N, 4) int32 ``(batch, x, y, z)`` voxel coordinates at this ``stride``, unique.
        stride: the tensor stride, in stride-1 voxels (1, 2, 4, ...).
        cache: the :class:`KernelMapCache` to share; a new one when omitted.
        check: validate shapes, dtypes, batch indices and uniqueness (done once per new cache).
    """

    def __init__(self, feats: torch.Tensor, coords: torch.Tensor, stride: int = 1, *,
                 cache: KernelMapCache | None = None, check: bool = True):
        if check:
            _validate(feats, coords, stride)
        self.feats = feats
        self.coords = coords
        self.stride = int(stride)
        if cache is None:
            cache = KernelMapCache()
        cache.coords.setdefault(self.stride, coords)
        self.cache = cache
        if check and self.stride not in cache.indices:
            cache.index(self.stride)  # builds the key index, rejecting duplicates now

    @property
    def num_channels(self) -> int:
        return self.feats.shape[1]

    @property
    def device(self) -> torch.device:
        return self.feats.device

    def __len__(self) -> int:
        return self.coords.shape[0]

    @property
    def batch_size(self) -> int:
        return int(self.coords[:, 0].max()) + 1 if len(self) else 0

    def replace_feats(self, feats: torch.Tensor) -> "SparseTensor":
        """Same voxels and cache, new (N, C') features."""
        if feats.dim() != 2 or feats.shape[0] != self.coords.shape[0]:
            raise PcsegValueError(
                f"feats: expected ({self.coords.shape[0]}, C) rows matching the coordinates, got "
                f"{tuple(feats.shape)}"
            )
        return SparseTensor(feats, self.coords, self.stride, cache=self.cache, check=False)

    def dense(self, shape: tuple[int, int, int], batch_size: int | None = None) -> torch.Tensor:
        """(B, C, X, Y, Z) dense tensor; coordinates must lie in ``[0, shape)`` (for tests/debug)."""
        b = self.batch_size if batch_size is None else batch_size
        out = self.feats.new_zeros((b, *shape, self.num_channels))
        c = self.coords.long()
        out[c[:, 0], c[:, 1], c[:, 2], c[:, 3]] = self.feats
        return out.permute(0, 4, 1, 2, 3).contiguous()

    def __repr__(self) -> str:
        return (f"SparseTensor(num_voxels={len(self)}, channels={self.num_channels}, "
                f"stride={self.stride}, dtype={self.feats.dtype}, device={self.device})")


def _validate(feats, coords, stride) -> None:
    if not isinstance(feats, torch.Tensor) or not isinstance(coords, torch.Tensor):
        raise PcsegValueError("SparseTensor: feats and coords must be torch tensors")
    if coords.dim() != 2 or coords.shape[1] != 4:
        raise PcsegValueError(
            f"coords: expected shape (N, 4) rows of (batch, x, y, z), got {tuple(coords.shape)}"
        )
    if coords.dtype != torch.int32:
        raise PcsegValueError(f"coords: expected dtype int32, got {coords.dtype}")
    if feats.dim() != 2:
        raise PcsegValueError(f"feats: expected shape (N, C), got {tuple(feats.shape)}")
    if not feats.is_floating_point():
        raise PcsegValueError(f"feats: expected a floating-point dtype, got {feats.dtype}")
    if feats.shape[0] != coords.shape[0]:
        raise PcsegValueError(
            f"feats has {feats.shape[0]} rows but coords has {coords.shape[0]}; they must match"
        )
    if coords.shape[0] == 0:
        raise PcsegValueError("SparseTensor: empty input (0 voxels); at least one voxel is needed")
    if feats.device != coords.device:
        raise PcsegValueError(
            f"feats are on {feats.device} but coords on {coords.device}; put both on one device"
        )
    if not isinstance(stride, int) or stride < 1:
        raise PcsegValueError(f"stride: expected a positive int, got {stride!r}")
    if int(coords[:, 0].min()) < 0:
        raise PcsegValueError("coords: batch indices (column 0) must be >= 0")
