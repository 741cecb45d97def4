// k nearest neighbours, CPU kernel and schema.
//
// pcseg::knn(points (N,3), queries (M,3), points_offsets (B,), queries_offsets (B,), k)
//   -> (idx (M,k) int64 global rows of points, dist (M,k) Euclidean, points' dtype)
// Nearest first, ties by smaller index; -1 / inf padding when a cloud has fewer than k points.
// Points are bucketed into a grid whose cell size targets about k points per occupied cell; each
// query visits shells of cells around its own until no unvisited cell can hold a closer point.
#include <torch/library.h>

#include "common/checks.h"
#include "common/grid.h"
#include "common/topk.h"

namespace pcseg {
namespace {

// Grid for kNN: the cell size starts from the bounding-box volume per k points and is corrected
// by the occupancy a point actually sees (sum of squared cell counts / N), assuming surface-like
// (2-D) density. The occupancy is measured on every `stride`-th point (a sample of about 8k): with
// sampling rate s, E[sum c_s^2] = s^2 sum c^2 + s (1 - s) sum c, which is inverted below. Only the
// final grid sorts all points. `size` receives the cell size.
template <typename scalar_t>
SortedCells knn_grid(const scalar_t* p, int64_t n, int64_t k, const int64_t* offsets, int64_t num_batches, double* size) {
  scalar_t lo_p[3], hi_p[3];
  coordinate_bounds(p, n, lo_p, hi_p);
  double lo[3], hi[3];
  for (int d = 0; d < 3; ++d) lo[d] = static_cast<double>(lo_p[d]), hi[d] = static_cast<double>(hi_p[d]);
  const double largest = std::max({hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]});
  const double origin[3] = {0.0, 0.0, 0.0};
  if (!(largest > 0)) {
    *size = 1.0;
    const double cell[3] = {1.0, 1.0, 1.0};
    return sort_into_cells(p, n, offsets, num_batches, cell, origin);
  }
  double volume = 1.0;
  for (int d = 0; d < 3; ++d) volume *= std::max(hi[d] - lo[d], largest * 1e-3);
  *size = std::max(std::cbrt(volume * static_cast<double>(std::min<int64_t>(k, n)) / static_cast<double>(n)), largest * 1e-6);

  // The sample: every stride-th point, with the clouds' offsets rescaled to it.
  const int64_t stride = std::max<int64_t>(1, n / 8192);
  const int64_t sample_n = (n + stride - 1) / stride;
  std::vector<scalar_t> sample(sample_n * 3);
  for (int64_t t = 0; t < sample_n; ++t) {
    for (int d = 0; d < 3; ++d) sample[t * 3 + d] = p[t * stride * 3 + d];
  }
  std::vector<int64_t> sample_offsets(num_batches);
  for (int64_t b = 0; b < num_batches; ++b) sample_offsets[b] = (offsets[b] + stride - 1) / stride;
  const double rate = 1.0 / static_cast<double>(stride);
  for (int round = 0; round < 3; ++round) {
    const double cell[3] = {*size, *size, *size};
    const SortedCells grid = sort_into_cells(sample.data(), sample_n, sample_offsets.data(), num_batches, cell, origin);
    double sample_squares = 0.0;
    for (size_t c = 0; c + 1 < grid.cell_start.size(); ++c) {
      const double count = static_cast<double>(grid.cell_start[c + 1] - grid.cell_start[c]);
      sample_squares += count * count;
    }
    const double squares = (sample_squares - (1.0 - rate) * static_cast<double>(sample_n)) / (rate * rate);
    const double occupancy = squares / static_cast<double>(n);
    // About k/2 points in a query's own cell: the first shell then usually suffices.
    const double factor = std::sqrt(0.5 * static_cast<double>(k) / std::max(occupancy, 1.0));
    if (factor > 0.6 && factor < 1.6) break;
    *size = std::max(*size * std::min(8.0, std::max(0.125, factor)), largest * 1e-6);
  }
  const double cell[3] = {*size, *size, *size};
  return sort_into_cells(p, n, offsets, num_batches, cell, origin);
}

std::tuple<at::Tensor, at::Tensor> knn_cpu(const at::Tensor& points_in, const at::Tensor& queries_in,
                                           const at::Tensor& points_offsets, const at::Tensor& queries_offsets, int64_t k) {
  check_neighbor_inputs(points_in, queries_in, points_offsets, queries_offsets);
  TORCH_CHECK(k >= 1, "k must be >= 1");
  const at::Tensor points = points_in.contiguous();
  const at::Tensor queries = queries_in.contiguous();
  const at::Tensor p_off = points_offsets.contiguous();
  const at::Tensor q_off = queries_offsets.contiguous();
  const int64_t n = points.size(0), m = queries.size(0), num_batches = p_off.size(0);
  at::Tensor idx = at::full({m, k}, -1, queries.options().dtype(at::kLong));
  at::Tensor dist = at::full({m, k}, std::numeric_limits<double>::infinity(), queries.options());
  if (m == 0 || n == 0) return {idx, dist};

  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_knn", [&] {
    const scalar_t* p = points.data_ptr<scalar_t>();
    const scalar_t* q = queries.data_ptr<scalar_t>();
    const int64_t* p_off_ptr = p_off.data_ptr<int64_t>();
    const double origin_for_order[3] = {0.0, 0.0, 0.0};
    // Density varies a lot in LiDAR scans: a query whose k neighbours are not found within 2 shells
    // of the fine grid restarts on a 4x, then 16x coarser grid (each search is exact on its own).
    constexpr int kLevels = 3;
    constexpr int64_t kShellsBeforeCoarser = 2;
    std::vector<SortedCells> grids;
    std::vector<double> sizes;
    double size = 1.0;
    grids.push_back(knn_grid(p, n, k, p_off_ptr, num_batches, &size));  // moved in, not copied
    sizes.push_back(size);
    const double cell_for_order[3] = {size, size, size};
    for (int level = 1; level < kLevels; ++level) {
      sizes.push_back(sizes.back() * 4.0);
      const double cell[3] = {sizes.back(), sizes.back(), sizes.back()};
      grids.push_back(sort_into_cells(p, n, p_off_ptr, num_batches, cell, origin_for_order));
    }
    // Coordinates copied in cell order so the candidate scans read memory sequentially.
    std::vector<std::vector<scalar_t>> sorted_xyz(kLevels);
    for (int level = 0; level < kLevels; ++level) {
      sorted_xyz[level].resize(n * 3);
      gather_rows3(p, grids[level].order.data(), n, sorted_xyz[level].data());
    }
    const std::vector<int64_t> query_batch = batch_of_points(q_off.data_ptr<int64_t>(), num_batches, m);
    int64_t* out_idx = idx.data_ptr<int64_t>();
    scalar_t* out_dist = dist.data_ptr<scalar_t>();

    // Queries visited in cell order: neighbouring queries share cells and lookups stay in cache.
    const std::vector<int32_t> query_order =
        sort_into_cells(q, m, q_off.data_ptr<int64_t>(), num_batches, cell_for_order, origin_for_order).order;
    at::parallel_for(0, m, 64, [&](int64_t q0, int64_t q1) {
      for (int64_t jj = q0; jj < q1; ++jj) {
        const int64_t j = query_order[jj];
        const scalar_t qx = q[j * 3], qy = q[j * 3 + 1], qz = q[j * 3 + 2];
        const int64_t b = query_batch[j];
        const int64_t cloud_size = p_off_ptr[b] - (b > 0 ? p_off_ptr[b - 1] : 0);
        if (cloud_size == 0) continue;
        TopK<scalar_t> best(out_dist + j * k, out_idx + j * k, k);
        // Ring search on one grid; false when it gave up after `max_shell` shells.
        auto search = [&](const SortedCells& g, const scalar_t* xyz, double cell_edge, int64_t max_shell) {
          const KeyLayout& layout = g.layout;
          const int64_t max_x = layout.min[0] + layout.extent[0] - 1, max_y = layout.min[1] + layout.extent[1] - 1,
                        max_z = layout.min[2] + layout.extent[2] - 1;
          const scalar_t cell_size = static_cast<scalar_t>(cell_edge);
          const int64_t cx = cell_of(qx, scalar_t(0), cell_size), cy = cell_of(qy, scalar_t(0), cell_size),
                        cz = cell_of(qz, scalar_t(0), cell_size);
          best.count = 0;
          int64_t seen = 0;
          auto scan_column = [&](int64_t x, int64_t y, int64_t z0, int64_t z1) {
            if (x < layout.min[0] || x > max_x || y < layout.min[1] || y > max_y) return;
            z0 = std::max(z0, layout.min[2]);
            z1 = std::min(z1, max_z);
            if (z0 > z1) return;
            int64_t begin, end;
            g.key_range(layout.pack(b, x, y, z0), layout.pack(b, x, y, z1), &begin, &end);
            seen += end - begin;
            for (int64_t t = begin; t < end; ++t) {
              const scalar_t dx = xyz[t * 3] - qx, dy = xyz[t * 3 + 1] - qy, dz = xyz[t * 3 + 2] - qz;
              const scalar_t d2 = dx * dx + dy * dy + dz * dz;
              if (!best.full() || d2 <= best.worst()) best.push(d2, g.order[t]);
            }
          };
          for (int64_t s = 0;; ++s) {
            for (int64_t x = cx - s; x <= cx + s; ++x) {
              for (int64_t y = cy - s; y <= cy + s; ++y) {
                if (std::abs(x - cx) == s || std::abs(y - cy) == s) {
                  scan_column(x, y, cz - s, cz + s);
                } else {
                  scan_column(x, y, cz - s, cz - s);
                  scan_column(x, y, cz + s, cz + s);
                }
              }
            }
            if (seen >= cloud_size) return true;
            // Every unvisited point lies outside the (2s+1)^3 block of visited cells: at least the
            // query's distance to that block's nearest face (less 1% of a cell for rounding).
            if (best.full()) {
              const double qv[3] = {static_cast<double>(qx), static_cast<double>(qy), static_cast<double>(qz)};
              const int64_t cv[3] = {cx, cy, cz};
              double reach = std::numeric_limits<double>::infinity();
              for (int d = 0; d < 3; ++d) {
                reach = std::min(reach, qv[d] - static_cast<double>(cv[d] - s) * cell_edge);
                reach = std::min(reach, static_cast<double>(cv[d] + s + 1) * cell_edge - qv[d]);
              }
              reach -= 0.01 * cell_edge;
              if (reach > 0 && static_cast<double>(best.worst()) < reach * reach) return true;
            }
            if (cx - s <= layout.min[0] && cx + s >= max_x && cy - s <= layout.min[1] && cy + s >= max_y &&
                cz - s <= layout.min[2] && cz + s >= max_z) {
              return true;
            }
            if (s >= max_shell) return false;
          }
        };
        for (int level = 0; level < kLevels; ++level) {
          const int64_t max_shell = level + 1 < kLevels ? kShellsBeforeCoarser : std::numeric_limits<int64_t>::max();
          if (search(grids[level], sorted_xyz[level].data(), sizes[level], max_shell)) break;
        }
        for (int64_t c = 0; c < best.count; ++c) out_dist[j * k + c] = std::sqrt(out_dist[j * k + c]);
      }
    });
  });
  return {idx, dist};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pcseg, m) {
  m.def("knn(Tensor points, Tensor queries, Tensor points_offsets, Tensor queries_offsets, int k) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pcseg, CPU, m) { m.impl("knn", &knn_cpu); }

}  // namespace pcseg
