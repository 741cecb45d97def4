// Dynamic voxelization, CUDA kernel. Deterministic and identical to the CPU kernel: the same cell
// rounding, voxels in ascending (batch, x, y, z) order, the same inverse and counts.
//
// Few launches and two small device->host copies, both needed (the extreme cells size the key's
// bit fields; the number of voxels sizes the outputs):
//   cells_kernel        int32 cell of every point and axis; per block the extreme cells and whether
//                       a coordinate is NaN/inf or a cell exceeds int32, merged into `summary`
//                       with one atomic per block and value       -> copy summary to the host
//   pack_keys_kernel    key = batch | x - min_x | y - min_y | z - min_z bit fields (as on the CPU)
//   cub radix sort      of (key, point) pairs over the key's bits only; stable, so the points of
//                       a voxel stay in point order
//   voxel_starts_kernel 1 where the sorted key changes; cub inclusive sum: 1 + voxel of each
//                       sorted point                              -> copy the voxel count
//   scatter_kernel      inverse[point] = voxel; at a voxel's first sorted point its coords and
//                       that position
//   counts_kernel       counts from consecutive first positions
#include <torch/library.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include "common/checks.h"
#include "common/cuda_compat.cuh"

namespace pcseg {
namespace {

// summary[0..2]: largest ~ordered(cell) per axis (so ~value is the smallest ordered cell),
// summary[3..5]: largest ordered(cell), summary[6]: flags. ordered() maps int32 to uint32 keeping
// the order, so that every value is a max of unsigned numbers starting from 0.
constexpr int kSummarySize = 8;
constexpr unsigned kNonFinite = 1u, kBeyondInt32 = 2u;
__device__ __forceinline__ unsigned ordered(int32_t cell) { return static_cast<unsigned>(cell) ^ 0x80000000u; }
inline int32_t unordered(unsigned value) { return static_cast<int32_t>(value ^ 0x80000000u); }

template <typename scalar_t>
struct Grid {
  scalar_t size[3];
  scalar_t origin[3];
};

template <typename scalar_t>
__global__ void cells_kernel(const scalar_t* __restrict__ points, int64_t n, Grid<scalar_t> grid,
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
      local[d] = max(local[d], ~ordered(cell));
      local[3 + d] = max(local[3 + d], ordered(cell));
      local[6] |= flag;
    }
  }
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

struct KeyFields {
  int32_t min[3];
  int shift[3];     // lowest bit of the x, y, z fields (z's is 0)
  int batch_shift;  // lowest bit of the batch field, just above x's; 64 when x's field reaches bit 63
};

// value << bits and value >> bits, 0 for a 64-bit shift (a field of width 0 may start at bit 64).
__device__ __forceinline__ uint64_t shift_up(uint64_t value, int bits) { return bits < 64 ? value << bits : 0; }
__device__ __forceinline__ uint64_t shift_down(uint64_t value, int bits) { return bits < 64 ? value >> bits : 0; }

__global__ void pack_keys_kernel(const int32_t* __restrict__ cells, const int64_t* __restrict__ offsets,
                                 int64_t num_batches, int64_t n, KeyFields fields, uint64_t* __restrict__ keys,
                                 int32_t* __restrict__ points_of_keys) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    // Cloud of point i: the first b with offsets[b] > i (binary search).
    int64_t lo = 0, hi = num_batches - 1;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (offsets[mid] > i) hi = mid; else lo = mid + 1;
    }
    uint64_t key = shift_up(static_cast<uint64_t>(lo), fields.batch_shift);  // lo is 0 when the shift is 64
    for (int d = 0; d < 3; ++d) {
      key |= shift_up(static_cast<uint32_t>(cells[i * 3 + d] - fields.min[d]), fields.shift[d]);
    }
    keys[i] = key;
    points_of_keys[i] = static_cast<int32_t>(i);
  }
}

__global__ void voxel_starts_kernel(const uint64_t* __restrict__ sorted_keys, int64_t n, int32_t* __restrict__ starts) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    starts[i] = i == 0 || sorted_keys[i] != sorted_keys[i - 1];
  }
}

__global__ void scatter_kernel(const uint64_t* __restrict__ sorted_keys, const int32_t* __restrict__ sorted_points,
                               const int32_t* __restrict__ voxel_plus_one, int64_t n, KeyFields fields,
                               int64_t width, int64_t* __restrict__ inverse, int32_t* __restrict__ coords,
                               int64_t* __restrict__ first_position) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
    const int64_t voxel = voxel_plus_one[i] - 1;
    inverse[sorted_points[i]] = voxel;
    if (i == 0 || sorted_keys[i] != sorted_keys[i - 1]) {
      const uint64_t key = sorted_keys[i];
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

int bits_for(uint64_t bound) {  // bits needed to store values in [0, bound)
  int bits = 0;
  while (bits < 64 && (uint64_t(1) << bits) < bound) ++bits;
  return bits;
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

  at::Tensor cells = at::empty({n, 3}, int_opts);
  at::Tensor summary = at::zeros({kSummarySize}, int_opts);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_voxelize_cuda", [&] {
    Grid<scalar_t> grid;
    for (int d = 0; d < 3; ++d) {
      grid.size[d] = static_cast<scalar_t>(voxel_size[d]);
      grid.origin[d] = static_cast<scalar_t>(origin[d]);
    }
    cells_kernel<scalar_t><<<blocks, cuda::kThreads, 0, stream>>>(
        points.data_ptr<scalar_t>(), n, grid, cells.data_ptr<int32_t>(),
        reinterpret_cast<unsigned*>(summary.data_ptr<int32_t>()));
  });
  PCSEG_CUDA_CHECK_LAUNCH();
  const at::Tensor summary_host = summary.cpu();  // waits for cells_kernel
  const unsigned* s = reinterpret_cast<const unsigned*>(summary_host.data_ptr<int32_t>());
  TORCH_CHECK(!(s[6] & kNonFinite), "points contains NaN or infinite coordinates");
  TORCH_CHECK(!(s[6] & kBeyondInt32), "voxel coordinates do not fit in int32: voxel_size is too small for these points");

  KeyFields fields;
  int shift = 0;
  for (int d = 2; d >= 0; --d) {  // z in the lowest bits, then y, x, batch
    fields.min[d] = unordered(~s[d]);
    const int64_t extent = static_cast<int64_t>(unordered(s[3 + d])) - fields.min[d] + 1;
    fields.shift[d] = shift;
    shift += bits_for(static_cast<uint64_t>(extent));
  }
  const int key_bits = shift + bits_for(static_cast<uint64_t>(num_batches));
  TORCH_CHECK(key_bits <= 64, "pcseg: the voxel grid is too large for the CUDA kernel (its keys need ", key_bits,
              " bits, at most 64): voxel_size is too small for the extent of these points");
  fields.batch_shift = shift;

  at::Tensor keys = at::empty({n}, long_opts);
  at::Tensor sorted_keys = at::empty({n}, long_opts);
  at::Tensor points_of_keys = at::empty({n}, int_opts);
  at::Tensor sorted_points = at::empty({n}, int_opts);
  auto* keys_ptr = reinterpret_cast<uint64_t*>(keys.data_ptr<int64_t>());
  auto* sorted_keys_ptr = reinterpret_cast<uint64_t*>(sorted_keys.data_ptr<int64_t>());
  pack_keys_kernel<<<blocks, cuda::kThreads, 0, stream>>>(cells.data_ptr<int32_t>(), offsets.data_ptr<int64_t>(),
                                                          num_batches, n, fields, keys_ptr,
                                                          points_of_keys.data_ptr<int32_t>());
  PCSEG_CUDA_CHECK_LAUNCH();

  // cub: ask for the scratch size, then run (torch's caching allocator serves the scratch).
  const int end_bit = key_bits > 0 ? key_bits : 1;
  size_t sort_bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys_ptr, sorted_keys_ptr, points_of_keys.data_ptr<int32_t>(),
                                  sorted_points.data_ptr<int32_t>(), static_cast<int>(n), 0, end_bit, stream);
  at::Tensor sort_scratch = at::empty({static_cast<int64_t>(sort_bytes)}, points.options().dtype(at::kByte));
  cudaError_t status = cub::DeviceRadixSort::SortPairs(
      sort_scratch.data_ptr(), sort_bytes, keys_ptr, sorted_keys_ptr, points_of_keys.data_ptr<int32_t>(),
      sorted_points.data_ptr<int32_t>(), static_cast<int>(n), 0, end_bit, stream);
  TORCH_CHECK(status == cudaSuccess, "pcseg voxelize: cub radix sort failed: ", cudaGetErrorString(status));

  at::Tensor starts = at::empty({n}, int_opts);
  at::Tensor voxel_plus_one = at::empty({n}, int_opts);
  int32_t* voxel_plus_one_ptr = voxel_plus_one.data_ptr<int32_t>();
  voxel_starts_kernel<<<blocks, cuda::kThreads, 0, stream>>>(sorted_keys_ptr, n, starts.data_ptr<int32_t>());
  PCSEG_CUDA_CHECK_LAUNCH();
  size_t scan_bytes = 0;
  cub::DeviceScan::InclusiveSum(nullptr, scan_bytes, starts.data_ptr<int32_t>(), voxel_plus_one_ptr, static_cast<int>(n),
                                stream);
  at::Tensor scan_scratch = at::empty({static_cast<int64_t>(scan_bytes)}, points.options().dtype(at::kByte));
  status = cub::DeviceScan::InclusiveSum(scan_scratch.data_ptr(), scan_bytes, starts.data_ptr<int32_t>(),
                                         voxel_plus_one_ptr, static_cast<int>(n), stream);
  TORCH_CHECK(status == cudaSuccess, "pcseg voxelize: cub scan failed: ", cudaGetErrorString(status));
  const int64_t num_voxels = voxel_plus_one[n - 1].item<int32_t>();  // waits for the scan

  at::Tensor inverse = at::empty({n}, long_opts);
  at::Tensor coords = at::empty({num_voxels, width}, int_opts);
  at::Tensor first_position = at::empty({num_voxels}, long_opts);
  at::Tensor counts = at::empty({num_voxels}, long_opts);
  scatter_kernel<<<blocks, cuda::kThreads, 0, stream>>>(sorted_keys_ptr, sorted_points.data_ptr<int32_t>(),
                                                        voxel_plus_one_ptr, n, fields, width,
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
