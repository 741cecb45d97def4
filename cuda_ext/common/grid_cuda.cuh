// CUDA counterpart of common/grid.h, shared by voxelization, ball query and kNN: int32 cells of
// points with their extreme cells (one kernel), a cub radix sort of (key, point) pairs over the
// key's bits only, numbering of the runs of equal sorted keys (cub scan), and the sorted-cells
// view (cell keys, starts, point order) with device-side lookups of a column of cells.
//
// Host synchronisations: one small copy after point_cells (the extreme cells size the keys and
// reject NaN/inf) and one after number_runs (the number of runs sizes the outputs).
#pragma once

#include <ATen/ATen.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include <cmath>

#include "common/bits.h"
#include "common/cuda_compat.cuh"

namespace pcseg {
namespace cuda {

// ---- cells of points and their extremes -------------------------------------------------------

template <typename scalar_t>
struct CellGrid {
  scalar_t size[3];
  scalar_t origin[3];
};

// summary[0..2]: largest ~ordered(cell) per axis (~value is the smallest ordered cell),
// summary[3..5]: largest ordered(cell), summary[6]: flags. ordered() maps int32 to uint32 keeping
// the order, so every entry is a max of unsigned values starting from 0 (a zero-filled tensor).
constexpr unsigned kNonFinite = 1u, kBeyondInt32 = 2u;
__device__ __forceinline__ unsigned ordered_cell(int32_t cell) { return static_cast<unsigned>(cell) ^ 0x80000000u; }

template <typename scalar_t>
__global__ void point_cells_kernel(const scalar_t* __restrict__ points, int64_t n, CellGrid<scalar_t> grid,
                                   int32_t* __restrict__ cells, unsigned* __restrict__ summary) {
  __shared__ unsigned block_summary[7];
  if (threadIdx.x < 7) block_summary[threadIdx.x] = 0;
  __syncthreads();
  unsigned local[7] = {0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    for (int d = 0; d < 3; ++d) {
      const scalar_t p = points[i * 3 + d];
      // Subtract then divide, as on the CPU (nothing to contract into an FMA; IEEE division).
      const scalar_t q = floor((p - grid.origin[d]) / grid.size[d]);
      unsigned flag = 0;
      if (!isfinite(p)) {
        flag = kNonFinite;
      } else if (!(q >= static_cast<scalar_t>(-2147483648.0) && q < static_cast<scalar_t>(2147483648.0))) {
        flag = kBeyondInt32;
      }
      const int32_t cell = flag ? 0 : static_cast<int32_t>(q);
      cells[i * 3 + d] = cell;
      local[d] = max(local[d], ~ordered_cell(cell));
      local[3 + d] = max(local[3 + d], ordered_cell(cell));
      local[6] |= flag;
    }
  }
  // Warp, then block, then one atomic per block and value.
  for (int k = 0; k < 7; ++k) {
    unsigned value = local[k];
    for (int lane_mask = 16; lane_mask > 0; lane_mask >>= 1) {
      const unsigned other = __shfl_xor_sync(0xffffffffu, value, lane_mask);
      value = k == 6 ? (value | other) : max(value, other);
    }
    if ((threadIdx.x & 31) == 0 && value != 0) {
      if (k == 6) atomicOr(&block_summary[k], value); else atomicMax(&block_summary[k], value);
    }
  }
  __syncthreads();
  if (threadIdx.x < 7 && block_summary[threadIdx.x] != 0) {
    if (threadIdx.x == 6) atomicOr(&summary[6], block_summary[6]); else atomicMax(&summary[threadIdx.x], block_summary[threadIdx.x]);
  }
}

struct PointCells {
  at::Tensor cells;  // (N, 3) int32, floor((p - origin) / size) in the points' precision
  int32_t min[3], max[3];
};

// Cells of the (non-empty) points and their extremes; raises on NaN/inf and on cells beyond int32.
template <typename scalar_t>
PointCells point_cells(const at::Tensor& points, const CellGrid<scalar_t>& grid) {
  const int64_t n = points.size(0);
  PointCells out;
  out.cells = at::empty({n, 3}, points.options().dtype(at::kInt));
  at::Tensor summary = at::zeros({8}, points.options().dtype(at::kInt));
  point_cells_kernel<scalar_t><<<blocks_for(n), kThreads, 0, current_stream()>>>(
      points.data_ptr<scalar_t>(), n, grid, out.cells.data_ptr<int32_t>(),
      reinterpret_cast<unsigned*>(summary.data_ptr<int32_t>()));
  PCSEG_CUDA_CHECK_LAUNCH();
  const at::Tensor host = summary.cpu();  // waits for the kernel
  const unsigned* s = reinterpret_cast<const unsigned*>(host.data_ptr<int32_t>());
  TORCH_CHECK(!(s[6] & kNonFinite), "points contains NaN or infinite coordinates");
  TORCH_CHECK(!(s[6] & kBeyondInt32),
              "voxel coordinates do not fit in int32: the voxel or cell size is too small for these points");
  for (int d = 0; d < 3; ++d) {
    out.min[d] = static_cast<int32_t>(~s[d] ^ 0x80000000u);
    out.max[d] = static_cast<int32_t>(s[3 + d] ^ 0x80000000u);
  }
  return out;
}

// ---- sorting and numbering keys ---------------------------------------------------------------

// Stable sort of (key, point) pairs by key bits [0, bits) (keys are non-negative int64, below
// 2^bits). Returns the sorted keys and points.
inline std::tuple<at::Tensor, at::Tensor> sort_pairs(const at::Tensor& keys, const at::Tensor& points_of_keys, int bits) {
  const int64_t n = keys.size(0);
  at::Tensor sorted_keys = at::empty_like(keys), sorted_points = at::empty_like(points_of_keys);
  const auto* in = reinterpret_cast<const uint64_t*>(keys.data_ptr<int64_t>());
  auto* out = reinterpret_cast<uint64_t*>(sorted_keys.data_ptr<int64_t>());
  const int end_bit = bits > 0 ? bits : 1;
  size_t bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, bytes, in, out, points_of_keys.data_ptr<int32_t>(),
                                  sorted_points.data_ptr<int32_t>(), static_cast<int>(n), 0, end_bit, current_stream());
  at::Tensor scratch = at::empty({static_cast<int64_t>(bytes)}, keys.options().dtype(at::kByte));
  const cudaError_t status = cub::DeviceRadixSort::SortPairs(
      scratch.data_ptr(), bytes, in, out, points_of_keys.data_ptr<int32_t>(), sorted_points.data_ptr<int32_t>(),
      static_cast<int>(n), 0, end_bit, current_stream());
  TORCH_CHECK(status == cudaSuccess, "pcseg: cub radix sort failed: ", cudaGetErrorString(status));
  return {sorted_keys, sorted_points};
}

// True where a sorted key differs from the one before it: the first position of each run.
__device__ __forceinline__ bool starts_run(const int64_t* sorted_keys, int64_t i) {
  return i == 0 || sorted_keys[i] != sorted_keys[i - 1];
}

__global__ void run_starts_kernel(const int64_t* __restrict__ sorted_keys, int64_t n, int32_t* __restrict__ starts) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    starts[i] = starts_run(sorted_keys, i);
  }
}

// 1 + the run of each sorted key (int32, (N,)), and the number of runs (waits for the device).
inline std::tuple<at::Tensor, int64_t> number_runs(const at::Tensor& sorted_keys) {
  const int64_t n = sorted_keys.size(0);
  const auto int_opts = sorted_keys.options().dtype(at::kInt);
  at::Tensor starts = at::empty({n}, int_opts), run_plus_one = at::empty({n}, int_opts);
  run_starts_kernel<<<blocks_for(n), kThreads, 0, current_stream()>>>(sorted_keys.data_ptr<int64_t>(), n,
                                                                      starts.data_ptr<int32_t>());
  PCSEG_CUDA_CHECK_LAUNCH();
  size_t bytes = 0;
  cub::DeviceScan::InclusiveSum(nullptr, bytes, starts.data_ptr<int32_t>(), run_plus_one.data_ptr<int32_t>(),
                                static_cast<int>(n), current_stream());
  at::Tensor scratch = at::empty({static_cast<int64_t>(bytes)}, sorted_keys.options().dtype(at::kByte));
  const cudaError_t status = cub::DeviceScan::InclusiveSum(scratch.data_ptr(), bytes, starts.data_ptr<int32_t>(),
                                                           run_plus_one.data_ptr<int32_t>(), static_cast<int>(n),
                                                           current_stream());
  TORCH_CHECK(status == cudaSuccess, "pcseg: cub scan failed: ", cudaGetErrorString(status));
  const int64_t num_runs = run_plus_one[n - 1].item<int32_t>();
  return {run_plus_one, num_runs};
}

// ---- points sorted into cells (ball query, kNN) -----------------------------------------------

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

// floor(p / size): the same rounding as point_cells with origin 0 and the CPU kernels' cell_of.
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
  at::Tensor cell_keys;   // (V,) int64, ascending
  at::Tensor cell_start;  // (V+1,) int64
  at::Tensor order;       // (N,) int32 point rows sorted by (key, row)
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

__global__ void cell_keys_kernel(const int32_t* __restrict__ cells, int64_t n, const int64_t* __restrict__ offsets,
                                 int64_t num_batches, CellLayout layout, int64_t* __restrict__ keys,
                                 int32_t* __restrict__ points_of_keys) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    keys[i] = layout.pack(cloud_of(offsets, num_batches, i), cells[i * 3], cells[i * 3 + 1], cells[i * 3 + 2]);
    points_of_keys[i] = static_cast<int32_t>(i);
  }
}

__global__ void cell_list_kernel(const int64_t* __restrict__ sorted_keys, const int32_t* __restrict__ cell_plus_one,
                                 int64_t n, int64_t num_cells, int64_t* __restrict__ cell_keys,
                                 int64_t* __restrict__ cell_start) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    if (starts_run(sorted_keys, i)) {
      const int64_t cell = cell_plus_one[i] - 1;
      cell_keys[cell] = sorted_keys[i];
      cell_start[cell] = i;
    }
    if (i == 0) cell_start[num_cells] = n;
  }
}

// Sorts the (non-empty) points of a ragged batch into cubic cells of edge `size` (the points'
// dtype rounding, origin 0).
inline DeviceCells build_cells(const at::Tensor& points, const at::Tensor& offsets, double size) {
  TORCH_CHECK(points.size(0) < (int64_t(1) << 31), "pcseg: at most 2^31 - 1 points per call");
  DeviceCells out;
  const int64_t n = points.size(0), num_batches = offsets.size(0);
  PointCells cells;
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_build_cells", [&] {
    const scalar_t s = static_cast<scalar_t>(size);
    cells = point_cells<scalar_t>(points, CellGrid<scalar_t>{{s, s, s}, {0, 0, 0}});
  });
  double total = static_cast<double>(num_batches);
  for (int d = 0; d < 3; ++d) {
    out.layout.min[d] = cells.min[d];
    out.layout.extent[d] = static_cast<int64_t>(cells.max[d]) - cells.min[d] + 1;
    total *= static_cast<double>(out.layout.extent[d]);
  }
  TORCH_CHECK(total < 4.0e18, "pcseg: the grid is too large to index (cell size too small for the extent of the points)");
  const auto long_opts = points.options().dtype(at::kLong);
  at::Tensor keys = at::empty({n}, long_opts);
  at::Tensor points_of_keys = at::empty({n}, points.options().dtype(at::kInt));
  cell_keys_kernel<<<blocks_for(n), kThreads, 0, current_stream()>>>(
      cells.cells.data_ptr<int32_t>(), n, offsets.data_ptr<int64_t>(), num_batches, out.layout,
      keys.data_ptr<int64_t>(), points_of_keys.data_ptr<int32_t>());
  PCSEG_CUDA_CHECK_LAUNCH();
  const uint64_t num_keys = static_cast<uint64_t>(num_batches * out.layout.extent[0] * out.layout.extent[1] *
                                                  out.layout.extent[2]);
  auto [sorted_keys, sorted_points] = sort_pairs(keys, points_of_keys, bits_for(num_keys));
  auto [cell_plus_one, num_cells] = number_runs(sorted_keys);
  out.order = sorted_points;
  out.cell_keys = at::empty({num_cells}, long_opts);
  out.cell_start = at::empty({num_cells + 1}, long_opts);
  cell_list_kernel<<<blocks_for(n), kThreads, 0, current_stream()>>>(
      sorted_keys.data_ptr<int64_t>(), cell_plus_one.data_ptr<int32_t>(), n, num_cells,
      out.cell_keys.data_ptr<int64_t>(), out.cell_start.data_ptr<int64_t>());
  PCSEG_CUDA_CHECK_LAUNCH();
  return out;
}

}  // namespace cuda
}  // namespace pcseg
