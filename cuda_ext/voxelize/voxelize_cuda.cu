// Dynamic voxelization, CUDA kernel. Deterministic and identical to the CPU kernel: the same cell
// rounding, voxels in ascending (batch, x, y, z) order, the same inverse and counts.
//
// Few launches and two small device->host copies (common/grid_cuda.cuh):
//   point_cells       int32 cells and the extreme cells; rejects NaN/inf and cells beyond int32
//   pack_keys_kernel  key = batch | x - min_x | y - min_y | z - min_z bit fields (as on the CPU)
//   sort_pairs        cub radix sort of (key, point) over the key's bits only; stable, so the
//                     points of a voxel stay in point order
//   number_runs       1 + the voxel of each sorted point (cub scan), and the voxel count
//   scatter_kernel    inverse[point] = voxel; at a voxel's first sorted point its coords and
//                     that position
//   counts_kernel     counts from consecutive first positions
// Unlike the CPU kernel (which falls back to a comparison sort), grids whose keys need more than
// 64 bits are refused.
#include <torch/library.h>

#include "common/checks.h"
#include "common/cuda_compat.cuh"
#include "common/grid_cuda.cuh"

namespace pcseg {
namespace {

struct KeyFields {
  int32_t min[3];
  int shift[3];     // lowest bit of the x, y, z fields (z's is 0)
  int batch_shift;  // lowest bit of the batch field, just above x's; 64 when x's field reaches bit 63
};

// value << bits and value >> bits, 0 for a 64-bit shift (a field of width 0 may start at bit 64).
__device__ __forceinline__ uint64_t shift_up(uint64_t value, int bits) { return bits < 64 ? value << bits : 0; }
__device__ __forceinline__ uint64_t shift_down(uint64_t value, int bits) { return bits < 64 ? value >> bits : 0; }

__global__ void pack_keys_kernel(const int32_t* __restrict__ cells, const int64_t* __restrict__ offsets,
                                 int64_t num_batches, int64_t n, KeyFields fields, int64_t* __restrict__ keys,
                                 int32_t* __restrict__ points_of_keys) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    const int64_t cloud = cuda::cloud_of(offsets, num_batches, i);
    uint64_t key = shift_up(static_cast<uint64_t>(cloud), fields.batch_shift);  // cloud is 0 when the shift is 64
    for (int d = 0; d < 3; ++d) {
      key |= shift_up(static_cast<uint64_t>(static_cast<int64_t>(cells[i * 3 + d]) - fields.min[d]), fields.shift[d]);
    }
    keys[i] = static_cast<int64_t>(key);  // the bits as they are: cub sorts them as unsigned
    points_of_keys[i] = static_cast<int32_t>(i);
  }
}

__global__ void scatter_kernel(const int64_t* __restrict__ sorted_keys, const int32_t* __restrict__ sorted_points,
                               const int32_t* __restrict__ voxel_plus_one, int64_t n, KeyFields fields,
                               int64_t width, int64_t* __restrict__ inverse, int32_t* __restrict__ coords,
                               int64_t* __restrict__ first_position) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    const int64_t voxel = voxel_plus_one[i] - 1;
    inverse[sorted_points[i]] = voxel;
    if (cuda::starts_run(sorted_keys, i)) {
      const uint64_t key = static_cast<uint64_t>(sorted_keys[i]);
      int32_t* row = coords + voxel * width;
      if (width == 4) *row++ = static_cast<int32_t>(shift_down(key, fields.batch_shift));
      const int top[3] = {fields.batch_shift, fields.shift[0], fields.shift[1]};  // each field ends where the next starts
      for (int d = 0; d < 3; ++d) {
        const uint64_t field = shift_down(key, fields.shift[d]) & ((uint64_t(1) << (top[d] - fields.shift[d])) - 1);
        row[d] = static_cast<int32_t>(static_cast<int64_t>(field) + fields.min[d]);
      }
      first_position[voxel] = i;
    }
  }
}

__global__ void counts_kernel(const int64_t* __restrict__ first_position, int64_t num_voxels, int64_t n,
                              int64_t* __restrict__ counts) {
  for (int64_t v = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; v < num_voxels;
       v += (int64_t)blockDim.x * gridDim.x) {
    counts[v] = (v + 1 < num_voxels ? first_position[v + 1] : n) - first_position[v];
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
  TORCH_CHECK(n < (int64_t(1) << 31), "pcseg: at most 2^31 - 1 points per call");
  const int64_t width = with_batch ? 4 : 3;
  const auto int_opts = points.options().dtype(at::kInt);
  const auto long_opts = points.options().dtype(at::kLong);
  if (n == 0) return {at::empty({0, width}, int_opts), at::empty({0}, long_opts), at::empty({0}, long_opts)};
  cudaStream_t stream = cuda::current_stream();
  const int blocks = cuda::blocks_for(n);

  cuda::PointCells cells;
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_voxelize_cuda", [&] {
    cuda::CellGrid<scalar_t> grid;
    for (int d = 0; d < 3; ++d) {
      grid.size[d] = static_cast<scalar_t>(voxel_size[d]);
      grid.origin[d] = static_cast<scalar_t>(origin[d]);
    }
    cells = cuda::point_cells<scalar_t>(points, grid);
  });
  KeyFields fields;
  int shift = 0;
  for (int d = 2; d >= 0; --d) {  // z in the lowest bits, then y, x, batch
    fields.min[d] = cells.min[d];
    fields.shift[d] = shift;
    shift += bits_for(static_cast<uint64_t>(static_cast<int64_t>(cells.max[d]) - cells.min[d] + 1));
  }
  fields.batch_shift = shift;
  const int key_bits = shift + bits_for(static_cast<uint64_t>(num_batches));
  TORCH_CHECK(key_bits <= 64, "pcseg: the voxel grid is too large for the CUDA kernel (its keys need ", key_bits,
              " bits, at most 64): voxel_size is too small for the extent of these points");

  at::Tensor keys = at::empty({n}, long_opts);
  at::Tensor points_of_keys = at::empty({n}, int_opts);
  pack_keys_kernel<<<blocks, cuda::kThreads, 0, stream>>>(cells.cells.data_ptr<int32_t>(), offsets.data_ptr<int64_t>(),
                                                          num_batches, n, fields, keys.data_ptr<int64_t>(),
                                                          points_of_keys.data_ptr<int32_t>());
  PCSEG_CUDA_CHECK_LAUNCH();
  auto [sorted_keys, sorted_points] = cuda::sort_pairs(keys, points_of_keys, key_bits);
  auto [voxel_plus_one, num_voxels] = cuda::number_runs(sorted_keys);

  at::Tensor inverse = at::empty({n}, long_opts);
  at::Tensor coords = at::empty({num_voxels, width}, int_opts);
  at::Tensor first_position = at::empty({num_voxels}, long_opts);
  at::Tensor counts = at::empty({num_voxels}, long_opts);
  scatter_kernel<<<blocks, cuda::kThreads, 0, stream>>>(sorted_keys.data_ptr<int64_t>(), sorted_points.data_ptr<int32_t>(),
                                                        voxel_plus_one.data_ptr<int32_t>(), n, fields, width,
                                                        inverse.data_ptr<int64_t>(), coords.data_ptr<int32_t>(),
                                                        first_position.data_ptr<int64_t>());
  PCSEG_CUDA_CHECK_LAUNCH();
  counts_kernel<<<cuda::blocks_for(num_voxels), cuda::kThreads, 0, stream>>>(first_position.data_ptr<int64_t>(),
                                                                            num_voxels, n, counts.data_ptr<int64_t>());
  PCSEG_CUDA_CHECK_LAUNCH();
  return {coords, inverse, counts};
}

}  // namespace

TORCH_LIBRARY_IMPL(pcseg, CUDA, m) { m.impl("voxelize", &voxelize_cuda); }

}  // namespace pcseg
