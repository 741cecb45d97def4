// Dynamic voxelization, CUDA kernel: per-point cells, packed int64 keys, one stable sort, and
// run boundaries. Deterministic and identical to the CPU kernel (same rounding, same order).
#include <torch/library.h>

#include "common/checks.h"
#include "common/cuda_compat.cuh"

namespace pcseg {
namespace {

template <typename scalar_t>
__global__ void point_cells_kernel(const scalar_t* __restrict__ points, int64_t n, scalar_t sx, scalar_t sy,
                                   scalar_t sz, scalar_t ox, scalar_t oy, scalar_t oz, int64_t* __restrict__ cells) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    // Explicit rounding (no contraction) so cells match the CPU kernel bit for bit.
    cells[i * 3 + 0] = static_cast<int64_t>(floor((points[i * 3 + 0] - ox) / sx));
    cells[i * 3 + 1] = static_cast<int64_t>(floor((points[i * 3 + 1] - oy) / sy));
    cells[i * 3 + 2] = static_cast<int64_t>(floor((points[i * 3 + 2] - oz) / sz));
  }
}

__global__ void pack_keys_kernel(const int64_t* __restrict__ cells, const int64_t* __restrict__ offsets,
                                 int64_t num_batches, int64_t n, int64_t min_x, int64_t min_y, int64_t min_z,
                                 int64_t ext_x, int64_t ext_y, int64_t ext_z, int64_t* __restrict__ keys) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    // Batch of point i: first b with offsets[b] > i (binary search).
    int64_t lo = 0, hi = num_batches - 1;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (offsets[mid] > i) hi = mid; else lo = mid + 1;
    }
    keys[i] = ((lo * ext_x + (cells[i * 3] - min_x)) * ext_y + (cells[i * 3 + 1] - min_y)) * ext_z +
              (cells[i * 3 + 2] - min_z);
  }
}

__global__ void unpack_keys_kernel(const int64_t* __restrict__ keys, int64_t num_voxels, int64_t min_x,
                                   int64_t min_y, int64_t min_z, int64_t ext_x, int64_t ext_y, int64_t ext_z,
                                   int32_t* __restrict__ coords) {
  for (int64_t v = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; v < num_voxels;
       v += (int64_t)blockDim.x * gridDim.x) {
    int64_t key = keys[v];
    const int64_t z = key % ext_z + min_z;
    key /= ext_z;
    const int64_t y = key % ext_y + min_y;
    key /= ext_y;
    const int64_t x = key % ext_x + min_x;
    coords[v * 4 + 0] = static_cast<int32_t>(key / ext_x);
    coords[v * 4 + 1] = static_cast<int32_t>(x);
    coords[v * 4 + 2] = static_cast<int32_t>(y);
    coords[v * 4 + 3] = static_cast<int32_t>(z);
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> voxelize_cuda(const at::Tensor& points_in, const at::Tensor& offsets_in,
                                                             at::ArrayRef<double> voxel_size,
                                                             at::ArrayRef<double> origin, bool with_batch) {
  PCSEG_CHECK_POINTS(points_in);
  PCSEG_CHECK_OFFSETS(offsets_in);
  PCSEG_CHECK_SAME_DEVICE(points_in, offsets_in);
  TORCH_CHECK(voxel_size.size() == 3 && origin.size() == 3, "voxel_size and origin must have 3 values");
  cuda::DeviceGuard guard(points_in);
  const at::Tensor points = points_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  const int64_t n = points.size(0);
  const int64_t num_batches = offsets.size(0);
  const auto long_opts = points.options().dtype(at::kLong);
  if (n == 0) {
    return {at::empty({0, with_batch ? 4 : 3}, points.options().dtype(at::kInt)), at::empty({0}, long_opts),
            at::empty({0}, long_opts)};
  }
  cudaStream_t stream = cuda::current_stream();
  at::Tensor cells = at::empty({n, 3}, long_opts);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_voxelize_cuda", [&] {
    point_cells_kernel<scalar_t><<<cuda::blocks_for(n), cuda::kThreads, 0, stream>>>(
        points.data_ptr<scalar_t>(), n, static_cast<scalar_t>(voxel_size[0]), static_cast<scalar_t>(voxel_size[1]),
        static_cast<scalar_t>(voxel_size[2]), static_cast<scalar_t>(origin[0]), static_cast<scalar_t>(origin[1]),
        static_cast<scalar_t>(origin[2]), cells.data_ptr<int64_t>());
  });
  PCSEG_CUDA_CHECK_LAUNCH();
  // One small device->host copy: the key layout (min and extent per axis).
  const at::Tensor bounds = at::stack({std::get<0>(cells.aminmax(0)), std::get<1>(cells.aminmax(0))}).cpu();
  const int64_t* b = bounds.data_ptr<int64_t>();
  const int64_t min_x = b[0], min_y = b[1], min_z = b[2];
  const int64_t ext_x = b[3] - min_x + 1, ext_y = b[4] - min_y + 1, ext_z = b[5] - min_z + 1;
  TORCH_CHECK(static_cast<double>(num_batches) * ext_x * ext_y * ext_z < 4.0e18,
              "pcseg: the grid is too large to index (voxel_size too small for the extent of the points)");
  TORCH_CHECK(min_x >= INT32_MIN && min_y >= INT32_MIN && min_z >= INT32_MIN && b[3] < INT32_MAX &&
                  b[4] < INT32_MAX && b[5] < INT32_MAX,
              "voxel coordinates do not fit in int32: voxel_size is too small for these points");

  at::Tensor keys = at::empty({n}, long_opts);
  pack_keys_kernel<<<cuda::blocks_for(n), cuda::kThreads, 0, stream>>>(
      cells.data_ptr<int64_t>(), offsets.data_ptr<int64_t>(), num_batches, n, min_x, min_y, min_z, ext_x, ext_y,
      ext_z, keys.data_ptr<int64_t>());
  PCSEG_CUDA_CHECK_LAUNCH();

  // Stable sort keeps equal keys in point order; run starts give voxel ids.
  auto sorted = keys.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false);
  const at::Tensor& sorted_keys = std::get<0>(sorted);
  const at::Tensor& permutation = std::get<1>(sorted);
  at::Tensor run_start = at::ones({n}, points.options().dtype(at::kBool));
  if (n > 1) run_start.slice(0, 1).copy_(sorted_keys.slice(0, 1) != sorted_keys.slice(0, 0, n - 1));
  const at::Tensor voxel_of_sorted = run_start.to(at::kLong).cumsum(0) - 1;
  at::Tensor inverse = at::empty({n}, long_opts);
  inverse.index_copy_(0, permutation, voxel_of_sorted);
  const at::Tensor unique_keys = sorted_keys.masked_select(run_start);
  const int64_t num_voxels = unique_keys.size(0);
  const at::Tensor starts = run_start.nonzero().view({-1});
  at::Tensor counts = at::empty({num_voxels}, long_opts);
  counts.slice(0, 0, num_voxels - 1).copy_(starts.slice(0, 1) - starts.slice(0, 0, num_voxels - 1));
  counts.slice(0, num_voxels - 1).fill_(n).sub_(starts.slice(0, num_voxels - 1));

  at::Tensor coords = at::empty({num_voxels, 4}, points.options().dtype(at::kInt));
  unpack_keys_kernel<<<cuda::blocks_for(num_voxels), cuda::kThreads, 0, stream>>>(
      unique_keys.data_ptr<int64_t>(), num_voxels, min_x, min_y, min_z, ext_x, ext_y, ext_z,
      coords.data_ptr<int32_t>());
  PCSEG_CUDA_CHECK_LAUNCH();
  if (!with_batch) coords = coords.slice(1, 1).contiguous();  // single cloud: (V, 3) (x, y, z)
  return {coords, inverse, counts};
}

}  // namespace

TORCH_LIBRARY_IMPL(pcseg, CUDA, m) { m.impl("voxelize", &voxelize_cuda); }

}  // namespace pcseg
