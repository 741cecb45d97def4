// k nearest neighbours, CUDA kernel: grid sized for about k points per occupied cell, one thread
// per query visiting shells of cells until no unvisited cell can hold a closer point. Same
// distances and ordering as the CPU kernel.
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/checks.h"
#include "common/grid_cuda.cuh"
#include "common/topk.h"

namespace pcseg {
namespace {

template <typename scalar_t>
__global__ void knn_kernel(const scalar_t* __restrict__ points, const int64_t* __restrict__ p_offsets,
                           const scalar_t* __restrict__ queries, int64_t m, const int64_t* __restrict__ q_offsets,
                           int64_t num_batches, const int64_t* __restrict__ cell_keys,
                           const int64_t* __restrict__ cell_start, int64_t num_cells, const int32_t* __restrict__ order,
                           cuda::CellLayout layout, scalar_t cell_size, double size, int64_t k,
                           scalar_t* __restrict__ out_dist, int64_t* __restrict__ out_idx) {
  for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < m; j += (int64_t)blockDim.x * gridDim.x) {
    const scalar_t qx = queries[j * 3], qy = queries[j * 3 + 1], qz = queries[j * 3 + 2];
    const int64_t b = cuda::cloud_of(q_offsets, num_batches, j);
    const int64_t cloud_size = p_offsets[b] - (b > 0 ? p_offsets[b - 1] : 0);
    if (cloud_size == 0) continue;
    const int64_t cx = cuda::cell_index(qx, cell_size), cy = cuda::cell_index(qy, cell_size),
                  cz = cuda::cell_index(qz, cell_size);
    const int64_t max_x = layout.min[0] + layout.extent[0] - 1, max_y = layout.min[1] + layout.extent[1] - 1,
                  max_z = layout.min[2] + layout.extent[2] - 1;
    TopK<scalar_t> best(out_dist + j * k, out_idx + j * k, k);
    int64_t seen = 0;
    for (int64_t s = 0;; ++s) {
      for (int64_t x = cx - s; x <= cx + s; ++x) {
        for (int64_t y = cy - s; y <= cy + s; ++y) {
          if (!layout.has_column(x, y)) continue;
          const bool rim = (x - cx == s || cx - x == s || y - cy == s || cy - y == s);
          // A rim column is scanned whole; an inner one only at z = cz - s and z = cz + s.
          for (int part = 0; part < (rim ? 1 : 2); ++part) {
            int64_t z0 = rim ? cz - s : (part == 0 ? cz - s : cz + s);
            int64_t z1 = rim ? cz + s : z0;
            if (!rim && s == 0 && part == 1) break;
            z0 = z0 > layout.min[2] ? z0 : layout.min[2];
            z1 = z1 < max_z ? z1 : max_z;
            if (z0 > z1) continue;
            int64_t begin, end;
            cuda::cell_run(cell_keys, cell_start, num_cells, layout.pack(b, x, y, z0), layout.pack(b, x, y, z1), &begin, &end);
            seen += end - begin;
            for (int64_t t = begin; t < end; ++t) {
              const int64_t i = order[t];
              best.push(cuda::exact_sq_dist(points[i * 3] - qx, points[i * 3 + 1] - qy, points[i * 3 + 2] - qz), i);
            }
          }
        }
      }
      if (seen >= cloud_size) break;
      const double reach = 0.99 * static_cast<double>(s) * size;
      if (best.full() && static_cast<double>(best.worst()) < reach * reach) break;
      if (cx - s <= layout.min[0] && cx + s >= max_x && cy - s <= layout.min[1] && cy + s >= max_y &&
          cz - s <= layout.min[2] && cz + s >= max_z) {
        break;
      }
    }
    for (int64_t c = 0; c < best.count; ++c) out_dist[j * k + c] = sqrt(out_dist[j * k + c]);
  }
}

// Cell size: bounding-box volume per k points, corrected once by the occupancy a point sees.
double knn_cell_size(const at::Tensor& points, const at::Tensor& offsets, int64_t k) {
  const int64_t n = points.size(0);
  const auto [lo, hi] = points.aminmax(0);
  const at::Tensor extent = (hi - lo).to(at::kDouble).cpu();
  const double* e = extent.data_ptr<double>();
  const double largest = std::max({e[0], e[1], e[2]});
  if (!(largest > 0)) return 1.0;
  double volume = 1.0;
  for (int d = 0; d < 3; ++d) volume *= std::max(e[d], largest * 1e-3);
  double size = std::cbrt(volume * static_cast<double>(std::min<int64_t>(k, n)) / static_cast<double>(n));
  const cuda::DeviceCells cells = cuda::build_cells(points, offsets, size);
  const at::Tensor counts = (cells.cell_start.slice(0, 1) - cells.cell_start.slice(0, 0, -1)).to(at::kDouble);
  const double occupancy = (counts * counts).sum().item<double>() / static_cast<double>(n);
  const double factor = std::sqrt(static_cast<double>(k) / std::max(occupancy, 1.0));
  if (!(factor > 0.7 && factor < 1.4)) size *= std::min(8.0, std::max(0.125, factor));
  return std::max(size, largest * 1e-6);
}

std::tuple<at::Tensor, at::Tensor> knn_cuda(const at::Tensor& points_in, const at::Tensor& queries_in,
                                            const at::Tensor& points_offsets, const at::Tensor& queries_offsets, int64_t k) {
  check_neighbor_inputs(points_in, queries_in, points_offsets, queries_offsets);
  TORCH_CHECK(k >= 1, "k must be >= 1");
  cuda::DeviceGuard guard(points_in);
  const at::Tensor points = points_in.contiguous(), queries = queries_in.contiguous();
  const at::Tensor p_off = points_offsets.contiguous(), q_off = queries_offsets.contiguous();
  const int64_t n = points.size(0), m = queries.size(0);
  at::Tensor idx = at::full({m, k}, -1, queries.options().dtype(at::kLong));
  at::Tensor dist = at::full({m, k}, std::numeric_limits<double>::infinity(), queries.options());
  if (n == 0 || m == 0) return {idx, dist};
  const double size = knn_cell_size(points, p_off, k);
  const cuda::DeviceCells cells = cuda::build_cells(points, p_off, size);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_knn_cuda", [&] {
    knn_kernel<scalar_t><<<cuda::blocks_for(m), cuda::kThreads, 0, cuda::current_stream()>>>(
        points.data_ptr<scalar_t>(), p_off.data_ptr<int64_t>(), queries.data_ptr<scalar_t>(), m,
        q_off.data_ptr<int64_t>(), q_off.size(0), cells.cell_keys.data_ptr<int64_t>(),
        cells.cell_start.data_ptr<int64_t>(), cells.cell_keys.size(0), cells.order.data_ptr<int32_t>(), cells.layout,
        static_cast<scalar_t>(size), size, k, dist.data_ptr<scalar_t>(), idx.data_ptr<int64_t>());
  });
  PCSEG_CUDA_CHECK_LAUNCH();
  return {idx, dist};
}

}  // namespace

TORCH_LIBRARY_IMPL(pcseg, CUDA, m) { m.impl("knn", &knn_cuda); }

}  // namespace pcseg
