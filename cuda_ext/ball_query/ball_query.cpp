// Ball query, CPU kernel and schema.
//
// pcseg::ball_query(points (N,3), queries (M,3), points_offsets (B,), queries_offsets (B,),
//                   radius, k) -> idx (M,k) int64
// For every query, the k nearest points of the same cloud with squared distance <= radius^2
// (computed in the points' precision), nearest first, ties by smaller index, -1 padding. Indices
// are global rows of `points`. Points are bucketed into cells slightly larger than half the radius;
// each query scans the 5x5 columns of 5 cells around it, skipping columns wholly beyond the
// radius, which wastes less volume than 3x3x3 radius-sized cells. Queries run in parallel.
#include <torch/library.h>

#include "common/checks.h"
#include "common/grid.h"
#include "common/topk.h"

namespace pcseg {
namespace {

// Cells a little larger than radius / 2 keep every neighbour within +-2 cells despite rounding.
constexpr double kCellMargin = 1.01;
constexpr int64_t kReach = 2;

at::Tensor ball_query_cpu(const at::Tensor& points_in, const at::Tensor& queries_in, const at::Tensor& points_offsets,
                          const at::Tensor& queries_offsets, double radius, int64_t k) {
  check_neighbor_inputs(points_in, queries_in, points_offsets, queries_offsets);
  TORCH_CHECK(radius > 0 && k >= 1, "radius must be > 0 and k >= 1");
  const at::Tensor points = points_in.contiguous();
  const at::Tensor queries = queries_in.contiguous();
  const at::Tensor p_off = points_offsets.contiguous();
  const at::Tensor q_off = queries_offsets.contiguous();
  const int64_t n = points.size(0), m = queries.size(0), num_batches = p_off.size(0);
  at::Tensor idx = at::full({m, k}, -1, queries.options().dtype(at::kLong));
  if (m == 0 || n == 0) return idx;

  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_ball_query", [&] {
    const double edge = radius * kCellMargin / kReach;
    const double cell[3] = {edge, edge, edge};
    const double origin[3] = {0.0, 0.0, 0.0};
    const scalar_t* p = points.data_ptr<scalar_t>();
    const scalar_t* q = queries.data_ptr<scalar_t>();
    const SortedCells grid = sort_into_cells(p, n, p_off.data_ptr<int64_t>(), num_batches, cell, origin);
    const KeyLayout& layout = grid.layout;
    const std::vector<int64_t> query_batch = batch_of_points(q_off.data_ptr<int64_t>(), num_batches, m);
    // Coordinates copied in cell order so the candidate scans read memory sequentially.
    std::vector<scalar_t> sorted_xyz(n * 3);
    gather_rows3(p, grid.order.data(), n, sorted_xyz.data());
    const scalar_t r = static_cast<scalar_t>(radius);
    const scalar_t r2 = r * r;
    const scalar_t cell_size = static_cast<scalar_t>(cell[0]);
    int64_t* out = idx.data_ptr<int64_t>();
    // Queries visited in cell order: neighbouring queries share cells and lookups stay in cache.
    const std::vector<int32_t> query_order =
        sort_into_cells(q, m, q_off.data_ptr<int64_t>(), num_batches, cell, origin).order;
    at::parallel_for(0, m, 64, [&](int64_t q0, int64_t q1) {
      std::vector<scalar_t> dist(k);
      for (int64_t jj = q0; jj < q1; ++jj) {
        const int64_t j = query_order[jj];
        const scalar_t qx = q[j * 3], qy = q[j * 3 + 1], qz = q[j * 3 + 2];
        const int64_t b = query_batch[j];
        const int64_t cx = cell_of(qx, scalar_t(0), cell_size), cy = cell_of(qy, scalar_t(0), cell_size),
                      cz = cell_of(qz, scalar_t(0), cell_size);
        const int64_t z_lo = std::max(cz - kReach, layout.min[2]);
        const int64_t z_hi = std::min(cz + kReach, layout.min[2] + layout.extent[2] - 1);
        if (z_lo > z_hi) continue;
        TopK<scalar_t> best(dist.data(), out + j * k, k);
        // Gap from the query to a column's slab along one axis, less 1% of a cell for rounding.
        const double edge_size = static_cast<double>(cell_size);
        auto gap = [&](int64_t c, double v) {
          const double lo = static_cast<double>(c) * edge_size, hi = lo + edge_size;
          const double g = v < lo ? lo - v : (v > hi ? v - hi : 0.0);
          return std::max(0.0, g - 0.01 * edge_size);
        };
        for (int64_t x = cx - kReach; x <= cx + kReach; ++x) {
          if (x < layout.min[0] || x >= layout.min[0] + layout.extent[0]) continue;
          const double gx = gap(x, static_cast<double>(qx));
          for (int64_t y = cy - kReach; y <= cy + kReach; ++y) {
            if (y < layout.min[1] || y >= layout.min[1] + layout.extent[1]) continue;
            const double gy = gap(y, static_cast<double>(qy));
            if (gx * gx + gy * gy > radius * radius) continue;
            int64_t begin, end;
            grid.key_range(layout.pack(b, x, y, z_lo), layout.pack(b, x, y, z_hi), &begin, &end);
            const scalar_t* xyz = sorted_xyz.data();
            for (int64_t s = begin; s < end; ++s) {
              const scalar_t dx = xyz[s * 3] - qx, dy = xyz[s * 3 + 1] - qy, dz = xyz[s * 3 + 2] - qz;
              const scalar_t d2 = dx * dx + dy * dy + dz * dz;
              if (d2 <= r2) best.push(d2, grid.order[s]);
            }
          }
        }
      }
    });
  });
  return idx;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pcseg, m) {
  m.def("ball_query(Tensor points, Tensor queries, Tensor points_offsets, Tensor queries_offsets, float radius, int k) -> Tensor");
}

TORCH_LIBRARY_IMPL(pcseg, CPU, m) { m.impl("ball_query", &ball_query_cpu); }

}  // namespace pcseg
