"""Point ops on CPU and GPU: voxelization, furthest-point sampling, ball query, kNN, grouping and
interpolation (see docs/ops.md). Each op runs the compiled kernel ``torch.ops.pcseg.<op>`` when
the extension is built, otherwise its pure-PyTorch reference. Importing this package loads
neither the extension nor CUDA.
"""

from pcseg.ops.grouping import group, interpolate_features, three_interpolate, three_nn_weights
from pcseg.ops.neighbors import ball_query, knn, three_nn
from pcseg.ops.sampling import furthest_point_sample, furthest_point_sample_ragged
from pcseg.ops.voxel_features import devoxelize_nearest, devoxelize_trilinear, hard_voxelize, voxel_reduce
from pcseg.ops.voxelize import voxelize, voxelize_batched

__all__ = [
    "ball_query",
    "devoxelize_nearest",
    "devoxelize_trilinear",
    "furthest_point_sample",
    "furthest_point_sample_ragged",
    "group",
    "hard_voxelize",
    "interpolate_features",
    "knn",
    "three_interpolate",
    "three_nn",
    "three_nn_weights",
    "voxel_reduce",
    "voxelize",
    "voxelize_batched",
]
