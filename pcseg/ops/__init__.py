"""Point ops on CPU and GPU: voxelization, furthest-point sampling, ball query, kNN, grouping and
interpolation (see docs/ops.md). Each op runs the compiled kernel ``torch.ops.pcseg.<op>`` when
the extension is built, otherwise its pure-PyTorch reference. Importing this package loads
neither the extension nor CUDA.
"""

from pcseg.ops.voxelize import voxelize, voxelize_batched

__all__ = ["voxelize", "voxelize_batched"]
