// Ball query, CUDA kernel: grid of cells slightly larger than the radius; each query scans its 3x3
// columns of cells; same distances, filter and ordering as the CPU kernel.
//
// k <= 32 (the usual case): one warp per query. The points are first copied into cell order, so
// the 32 lanes read 32 consecutive candidates of a column at once, and the warp keeps its k best
// (squared distance, index) pairs as a sorted list of 32, one pair per lane: a batch that holds a
// better candidate is sorted with bitonic steps on warp shuffles and merged with the list. One
// thread per query would leave most of a large GPU idle for a few thousand queries.
// k > 32: one thread per query, with an insertion list in global memory.
#include <torch/library.h>

#include "common/checks.h"
#include "common/grid_cuda.cuh"
#include "common/topk.h"

#include <limits>

namespace pcseg {
namespace {

constexpr double kCellMargin = 1.01;  // as on the CPU

// Query j's cloud, its cell's x and y, and the z range of its 3x3 columns of cells clipped to the
// grid (z_lo > z_hi: nothing to visit).
struct QueryColumns {
  int64_t b, cx, cy, z_lo, z_hi;
};

template <typename scalar_t>
__device__ __forceinline__ QueryColumns query_columns(scalar_t qx, scalar_t qy, scalar_t qz, int64_t j,
                                                      const int64_t* q_offsets, int64_t num_batches,
                                                      const cuda::CellLayout& layout, scalar_t cell_size) {
  const int64_t cz = cuda::cell_index(qz, cell_size);
  const int64_t z_max = layout.min[2] + layout.extent[2] - 1;
  return {cuda::cloud_of(q_offsets, num_batches, j), cuda::cell_index(qx, cell_size), cuda::cell_index(qy, cell_size),
          cz - 1 > layout.min[2] ? cz - 1 : layout.min[2], cz + 1 < z_max ? cz + 1 : z_max};
}

template <typename scalar_t>
__global__ void ball_query_kernel(const scalar_t* __restrict__ points, const scalar_t* __restrict__ queries, int64_t m,
                                  const int64_t* __restrict__ q_offsets, int64_t num_batches,
                                  const int64_t* __restrict__ cell_keys, const int64_t* __restrict__ cell_start,
                                  int64_t num_cells, const int32_t* __restrict__ order, cuda::CellLayout layout,
                                  scalar_t cell_size, scalar_t r2, int64_t k, scalar_t* __restrict__ scratch,
                                  int64_t* __restrict__ out) {
  for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < m; j += (int64_t)blockDim.x * gridDim.x) {
    const scalar_t qx = queries[j * 3], qy = queries[j * 3 + 1], qz = queries[j * 3 + 2];
    const QueryColumns q = query_columns(qx, qy, qz, j, q_offsets, num_batches, layout, cell_size);
    if (q.z_lo > q.z_hi) continue;
    TopK<scalar_t> best(scratch + j * k, out + j * k, k);
    for (int64_t x = q.cx - 1; x <= q.cx + 1; ++x) {
      for (int64_t y = q.cy - 1; y <= q.cy + 1; ++y) {
        if (!layout.has_column(x, y)) continue;
        int64_t begin, end;
        cuda::cell_run(cell_keys, cell_start, num_cells, layout.pack(q.b, x, y, q.z_lo), layout.pack(q.b, x, y, q.z_hi),
                       &begin, &end);
        for (int64_t s = begin; s < end; ++s) {
          const int64_t i = order[s];
          const scalar_t d2 = cuda::exact_sq_dist(points[i * 3] - qx, points[i * 3 + 1] - qy, points[i * 3 + 2] - qz);
          if (d2 <= r2) best.push(d2, i);
        }
      }
    }
  }
}

constexpr unsigned kFullWarp = 0xffffffffu;
constexpr int kWarpK = 32;  // the largest k of the warp kernel

// Compare-exchange of the (distance, index) pairs held by this lane and lane ^ partner_mask:
// keep the smaller pair when keep_smaller, else the larger.
template <typename scalar_t>
__device__ __forceinline__ void exchange(scalar_t& d, int32_t& i, int partner_mask, bool keep_smaller) {
  const scalar_t other_d = __shfl_xor_sync(kFullWarp, d, partner_mask);
  const int32_t other_i = __shfl_xor_sync(kFullWarp, i, partner_mask);
  if (pair_less(other_d, other_i, d, i) == keep_smaller) {
    d = other_d;
    i = other_i;
  }
}

// Sorts the warp's 32 pairs ascending across the lanes (bitonic sort).
template <typename scalar_t>
__device__ __forceinline__ void warp_sort(scalar_t& d, int32_t& i, int lane) {
  for (int size = 2; size <= 32; size <<= 1) {
    const bool ascending = (lane & size) == 0;  // always true in the last, 32-wide stage
    for (int stride = size / 2; stride > 0; stride >>= 1) exchange(d, i, stride, ((lane & stride) == 0) == ascending);
  }
}

// list := the 32 smallest pairs of list and batch, ascending (both ascending on entry).
template <typename scalar_t>
__device__ __forceinline__ void warp_merge(scalar_t& list_d, int32_t& list_i, scalar_t batch_d, int32_t batch_i,
                                           int lane) {
  const scalar_t reversed_d = __shfl_sync(kFullWarp, batch_d, 31 - lane);
  const int32_t reversed_i = __shfl_sync(kFullWarp, batch_i, 31 - lane);
  if (pair_less(reversed_d, reversed_i, list_d, list_i)) {  // now a bitonic sequence of the 32 smallest
    list_d = reversed_d;
    list_i = reversed_i;
  }
  for (int stride = 16; stride > 0; stride >>= 1) exchange(list_d, list_i, stride, (lane & stride) == 0);
}

template <typename scalar_t>
__global__ void ball_query_warp_kernel(const scalar_t* __restrict__ cell_points, const scalar_t* __restrict__ queries,
                                       int64_t m, const int64_t* __restrict__ q_offsets, int64_t num_batches,
                                       const int64_t* __restrict__ cell_keys, const int64_t* __restrict__ cell_start,
                                       int64_t num_cells, const int32_t* __restrict__ order, cuda::CellLayout layout,
                                       scalar_t cell_size, scalar_t r2, int64_t k, int64_t* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x / 32);
  const scalar_t none = std::numeric_limits<scalar_t>::infinity();
  constexpr int32_t kNoPoint = std::numeric_limits<int32_t>::max();
  for (int64_t j = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32; j < m; j += warps) {
    const scalar_t qx = queries[j * 3], qy = queries[j * 3 + 1], qz = queries[j * 3 + 2];
    const QueryColumns q = query_columns(qx, qy, qz, j, q_offsets, num_batches, layout, cell_size);
    // Lane c < 9 finds the points of column c (x = cx - 1 + c / 3, y = cy - 1 + c % 3).
    int64_t column_begin = 0, column_end = 0;
    if (lane < 9 && q.z_lo <= q.z_hi) {
      const int64_t x = q.cx - 1 + lane / 3, y = q.cy - 1 + lane % 3;
      if (layout.has_column(x, y)) {
        cuda::cell_run(cell_keys, cell_start, num_cells, layout.pack(q.b, x, y, q.z_lo), layout.pack(q.b, x, y, q.z_hi),
                       &column_begin, &column_end);
      }
    }
    scalar_t best_d = none;
    int32_t best_i = kNoPoint;
    for (int c = 0; c < 9; ++c) {
      const int64_t begin = __shfl_sync(kFullWarp, column_begin, c), end = __shfl_sync(kFullWarp, column_end, c);
      for (int64_t base = begin; base < end; base += 32) {
        const int64_t s = base + lane;
        scalar_t d = none;
        int32_t i = kNoPoint;
        if (s < end) {
          const scalar_t d2 = cuda::exact_sq_dist(cell_points[s * 3] - qx, cell_points[s * 3 + 1] - qy,
                                                  cell_points[s * 3 + 2] - qz);
          if (d2 <= r2) d = d2, i = order[s];
        }
        // The k-th best so far (lane k - 1): a batch with nothing better leaves the list as it is.
        const scalar_t kth_d = __shfl_sync(kFullWarp, best_d, static_cast<int>(k - 1));
        const int32_t kth_i = __shfl_sync(kFullWarp, best_i, static_cast<int>(k - 1));
        if (!__any_sync(kFullWarp, i != kNoPoint && pair_less(d, i, kth_d, kth_i))) continue;
        warp_sort(d, i, lane);
        warp_merge(best_d, best_i, d, i, lane);
      }
    }
    if (lane < k) out[j * k + lane] = best_i == kNoPoint ? -1 : static_cast<int64_t>(best_i);
  }
}

// out[t] = points[order[t]] (the points in cell order).
template <typename scalar_t>
__global__ void gather_points_kernel(const scalar_t* __restrict__ points, const int32_t* __restrict__ order, int64_t n,
                                     scalar_t* __restrict__ out) {
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n; t += (int64_t)blockDim.x * gridDim.x) {
    const int64_t i = order[t];
    out[t * 3] = points[i * 3], out[t * 3 + 1] = points[i * 3 + 1], out[t * 3 + 2] = points[i * 3 + 2];
  }
}

at::Tensor ball_query_cuda(const at::Tensor& points_in, const at::Tensor& queries_in, const at::Tensor& points_offsets,
                           const at::Tensor& queries_offsets, double radius, int64_t k) {
  check_neighbor_inputs(points_in, queries_in, points_offsets, queries_offsets);
  TORCH_CHECK(radius > 0 && k >= 1, "radius must be > 0 and k >= 1");
  cuda::DeviceGuard guard(points_in);
  const at::Tensor points = points_in.contiguous(), queries = queries_in.contiguous();
  const at::Tensor p_off = points_offsets.contiguous(), q_off = queries_offsets.contiguous();
  const int64_t n = points.size(0), m = queries.size(0);
  at::Tensor idx = at::full({m, k}, -1, queries.options().dtype(at::kLong));
  if (n == 0 || m == 0) return idx;
  const double size = radius * kCellMargin;
  const cuda::DeviceCells cells = cuda::build_cells(points, p_off, size);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_ball_query_cuda", [&] {
    const scalar_t r = static_cast<scalar_t>(radius);
    cudaStream_t stream = cuda::current_stream();
    if (k <= kWarpK) {
      at::Tensor cell_points = at::empty_like(points);
      gather_points_kernel<scalar_t><<<cuda::blocks_for(n), cuda::kThreads, 0, stream>>>(
          points.data_ptr<scalar_t>(), cells.order.data_ptr<int32_t>(), n, cell_points.data_ptr<scalar_t>());
      PCSEG_CUDA_CHECK_LAUNCH();
      const int queries_per_block = cuda::kThreads / 32;
      ball_query_warp_kernel<scalar_t><<<cuda::blocks_for(m, queries_per_block), cuda::kThreads, 0, stream>>>(
          cell_points.data_ptr<scalar_t>(), queries.data_ptr<scalar_t>(), m, q_off.data_ptr<int64_t>(), q_off.size(0),
          cells.cell_keys.data_ptr<int64_t>(), cells.cell_start.data_ptr<int64_t>(), cells.cell_keys.size(0),
          cells.order.data_ptr<int32_t>(), cells.layout, static_cast<scalar_t>(size), r * r, k,
          idx.data_ptr<int64_t>());
    } else {
      at::Tensor scratch = at::empty({m, k}, queries.options());
      ball_query_kernel<scalar_t><<<cuda::blocks_for(m), cuda::kThreads, 0, stream>>>(
          points.data_ptr<scalar_t>(), queries.data_ptr<scalar_t>(), m, q_off.data_ptr<int64_t>(), q_off.size(0),
          cells.cell_keys.data_ptr<int64_t>(), cells.cell_start.data_ptr<int64_t>(), cells.cell_keys.size(0),
          cells.order.data_ptr<int32_t>(), cells.layout, static_cast<scalar_t>(size), r * r, k,
          scratch.data_ptr<scalar_t>(), idx.data_ptr<int64_t>());
    }
  });
  PCSEG_CUDA_CHECK_LAUNCH();
  return idx;
}

}  // namespace

TORCH_LIBRARY_IMPL(pcseg, CUDA, m) { m.impl("ball_query", &ball_query_cuda); }

}  // namespace pcseg
