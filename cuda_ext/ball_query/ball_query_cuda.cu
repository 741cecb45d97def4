// Ball query, CUDA kernel: grid of cells slightly larger than the radius, one thread per query
// scanning its 3x3 columns of cells; same distances, filter and ordering as the CPU kernel.
#include <torch/library.h>

#include "common/checks.h"
#include "common/grid_cuda.cuh"
#include "common/topk.h"

namespace pcseg {
namespace {

constexpr double kCellMargin = 1.01;  // as on the CPU

template <typename scalar_t>
__global__ void ball_query_kernel(const scalar_t* __restrict__ points, const scalar_t* __restrict__ queries, int64_t m,
                                  const int64_t* __restrict__ q_offsets, int64_t num_batches,
                                  const int64_t* __restrict__ cell_keys, const int64_t* __restrict__ cell_start,
                                  int64_t num_cells, const int32_t* __restrict__ order, cuda::CellLayout layout,
                                  scalar_t cell_size, scalar_t r2, int64_t k, scalar_t* __restrict__ scratch,
                                  int64_t* __restrict__ out) {
  for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < m; j += (int64_t)blockDim.x * gridDim.x) {
    const scalar_t qx = queries[j * 3], qy = queries[j * 3 + 1], qz = queries[j * 3 + 2];
    const int64_t b = cuda::cloud_of(q_offsets, num_batches, j);
    const int64_t cx = cuda::cell_index(qx, cell_size), cy = cuda::cell_index(qy, cell_size),
                  cz = cuda::cell_index(qz, cell_size);
    const int64_t z_max = layout.min[2] + layout.extent[2] - 1;
    const int64_t z_lo = cz - 1 > layout.min[2] ? cz - 1 : layout.min[2];
    const int64_t z_hi = cz + 1 < z_max ? cz + 1 : z_max;
    if (z_lo > z_hi) continue;
    TopK<scalar_t> best(scratch + j * k, out + j * k, k);
    for (int64_t x = cx - 1; x <= cx + 1; ++x) {
      for (int64_t y = cy - 1; y <= cy + 1; ++y) {
        if (!layout.has_column(x, y)) continue;
        int64_t begin, end;
        cuda::cell_run(cell_keys, cell_start, num_cells, layout.pack(b, x, y, z_lo), layout.pack(b, x, y, z_hi), &begin, &end);
        for (int64_t s = begin; s < end; ++s) {
          const int64_t i = order[s];
          const scalar_t d2 = cuda::exact_sq_dist(points[i * 3] - qx, points[i * 3 + 1] - qy, points[i * 3 + 2] - qz);
          if (d2 <= r2) best.push(d2, i);
        }
      }
    }
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
  at::Tensor scratch = at::empty({m, k}, queries.options());
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_ball_query_cuda", [&] {
    const scalar_t r = static_cast<scalar_t>(radius);
    ball_query_kernel<scalar_t><<<cuda::blocks_for(m), cuda::kThreads, 0, cuda::current_stream()>>>(
        points.data_ptr<scalar_t>(), queries.data_ptr<scalar_t>(), m, q_off.data_ptr<int64_t>(), q_off.size(0),
        cells.cell_keys.data_ptr<int64_t>(), cells.cell_start.data_ptr<int64_t>(), cells.cell_keys.size(0),
        cells.order.data_ptr<int32_t>(), cells.layout, static_cast<scalar_t>(size), r * r, k,
        scratch.data_ptr<scalar_t>(), idx.data_ptr<int64_t>());
  });
  PCSEG_CUDA_CHECK_LAUNCH();
  return idx;
}

}  // namespace

TORCH_LIBRARY_IMPL(pcseg, CUDA, m) { m.impl("ball_query", &ball_query_cuda); }

}  // namespace pcseg
