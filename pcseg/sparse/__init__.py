"""pcseg.sparse: sparse 3D convolution on voxels, on the CPU and on CUDA.

``SparseTensor(feats (N, C), coords int32 (N, 4) = (batch, x, y, z), stride=1)`` carries a
kernel-map cache shared by every tensor derived from it in one forward pass. Layers:
``SubMConv3d``, ``SparseConv3d`` (downsampling), ``SparseInverseConv3d`` (upsampling through the
matching downsampling's map), ``SparseBatchNorm``, ``SparseReLU``, ``Featurewise``, plus
``sparse_cat``, ``global_avg_pool``, ``global_max_pool`` and ``voxel_to_point``.
Weights have shape ``(k, k, k, C_in, C_out)``; see docs/sparse.md for the exact convention.
"""

from pcseg.sparse.functional import sparse_conv
from pcseg.sparse.kernel_map import KernelMap
from pcseg.sparse.layers import (
    Featurewise,
    SparseBatchNorm,
    SparseConv3d,
    SparseInverseConv3d,
    SparseReLU,
    SubMConv3d,
    global_avg_pool,
    global_max_pool,
    sparse_cat,
    voxel_to_point,
)
from pcseg.sparse.tensor import KernelMapCache, SparseTensor

__all__ = [
    "SparseTensor", "KernelMapCache", "KernelMap", "sparse_conv",
    "SubMConv3d", "SparseConv3d", "SparseInverseConv3d", "SparseBatchNorm", "SparseReLU",
    "Featurewise", "sparse_cat", "global_avg_pool", "global_max_pool", "voxel_to_point",
]
