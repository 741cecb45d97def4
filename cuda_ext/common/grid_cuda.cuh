// CUDA counterpart of common/grid.h: points of a ragged batch sorted into cells (packed int64
// keys (batch, x, y, z), one stable sort), with device-side lookups of a column of cells.
#pragma once

#include <ATen/ATen.h>

#include <cmath>

#include "common/cuda_compat.cuh"

namespace pcseg {
namespace cuda {

struct CellLayout {
  int64_t min[3];
  int64_t extent[3];
  __host__ __device__ int64_t pack(int64_t b, int64_t x, int64_t y, int64_t z) const {
    return ((b * extent[0] + (x - min[0])) * extent[1] + (y - min[1])) * extent[2] + (z - min[2]);
  }
  __host__ __device__ bool has_column(int64_t x, int64_t y) const {
    return x >= min[0] && x < min[0] + extent[0] && y >= min[1] && y < min[1] + extent[1];
  }
};

// floor(p / size): the same rounding as the CPU kernels' cell_of with origin 0.
template <typename scalar_t>
__host__ __device__ __forceinline__ int64_t cell_index(scalar_t p, scalar_t size) {
  const scalar_t q = (p - scalar_t(0)) / size;
  const int64_t t = static_cast<int64_t>(q);
  return t - static_cast<int64_t>(q < static_cast<scalar_t>(t));
}

// First b with offsets[b] > i: the cloud of row i.
__device__ __forceinline__ int64_t cloud_of(const int64_t* offsets, int64_t num_batches, int64_t i) {
  int64_t lo = 0, hi = num_batches - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (offsets[mid] > i) hi = mid; else lo = mid + 1;
  }
  return lo;
}

struct DeviceCells {
  CellLayout layout;
  at::Tensor cell_keys;   // (V,) ascending
  at::Tensor cell_start;  // (V+1,)
  at::Tensor order;       // (N,) point rows sorted by (key, row)
};

// [begin, end) in `order` of the cells with keys in [key_lo, key_hi].
__device__ __forceinline__ void cell_run(const int64_t* keys, const int64_t* starts, int64_t num_cells, int64_t key_lo,
                                         int64_t key_hi, int64_t* begin, int64_t* end) {
  int64_t lo = 0, hi = num_cells;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (keys[mid] < key_lo) lo = mid + 1; else hi = mid;
  }
  const int64_t first = lo;
  hi = num_cells;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (keys[mid] <= key_hi) lo = mid + 1; else hi = mid;
  }
  *begin = starts[first];
  *end = starts[lo];
}

template <typename scalar_t>
__global__ void cell_keys_kernel(const scalar_t* __restrict__ points, int64_t n, const int64_t* __restrict__ offsets,
                                 int64_t num_batches, scalar_t size, CellLayout layout, int64_t* __restrict__ keys) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    keys[i] = layout.pack(cloud_of(offsets, num_batches, i), cell_index(points[i * 3], size),
                          cell_index(points[i * 3 + 1], size), cell_index(points[i * 3 + 2], size));
  }
}

// Sorts the (non-empty) points into cubic cells of edge `size` (the points' dtype rounding).
inline DeviceCells build_cells(const at::Tensor& points, const at::Tensor& offsets, double size) {
  DeviceCells cells;
  const int64_t n = points.size(0), num_batches = offsets.size(0);
  const auto bounds = points.aminmax(0);
  const at::Tensor lo = std::get<0>(bounds).to(at::kDouble).cpu(), hi = std::get<1>(bounds).to(at::kDouble).cpu();
  double total = static_cast<double>(num_batches);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_cell_layout", [&] {
    const scalar_t s = static_cast<scalar_t>(size);
    for (int d = 0; d < 3; ++d) {
      cells.layout.min[d] = cell_index(static_cast<scalar_t>(lo.data_ptr<double>()[d]), s);
      cells.layout.extent[d] = cell_index(static_cast<scalar_t>(hi.data_ptr<double>()[d]), s) - cells.layout.min[d] + 1;
      total *= static_cast<double>(cells.layout.extent[d]);
    }
  });
  TORCH_CHECK(total < 4.0e18, "pcseg: the grid is too large to index (cell size too small for the extent of the points)");
  at::Tensor keys = at::empty({n}, points.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_cell_keys", [&] {
    cell_keys_kernel<scalar_t><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        points.data_ptr<scalar_t>(), n, offsets.data_ptr<int64_t>(), num_batches, static_cast<scalar_t>(size),
        cells.layout, keys.data_ptr<int64_t>());
  });
  PCSEG_CUDA_CHECK_LAUNCH();
  auto sorted = keys.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false);
  const at::Tensor& sorted_keys = std::get<0>(sorted);
  cells.order = std::get<1>(sorted);
  at::Tensor run_start = at::ones({n}, points.options().dtype(at::kBool));
  if (n > 1) run_start.slice(0, 1).copy_(sorted_keys.slice(0, 1) != sorted_keys.slice(0, 0, n - 1));
  cells.cell_keys = sorted_keys.masked_select(run_start);
  cells.cell_start = at::cat({run_start.nonzero().view({-1}), at::full({1}, n, keys.options())});
  return cells;
}

}  // namespace cuda
}  // namespace pcseg
