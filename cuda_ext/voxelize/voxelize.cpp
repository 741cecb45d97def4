// Dynamic voxelization, CPU kernel and schema.
//
// pcseg::voxelize(points (N,3), offsets (B,) int64, voxel_size[3], origin[3])
//   -> coords (V,4) int32 (batch, x, y, z) in ascending lexicographic order,
//      inverse (N,) int64 (voxel of every point), counts (V,) int64.
// Cell of a point: floor((p - origin) / voxel_size) in the points' precision.
#include <torch/library.h>

#include "common/checks.h"
#include "common/grid.h"

namespace pcseg {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> voxelize_cpu(const at::Tensor& points_in, const at::Tensor& offsets_in,
                                                            at::ArrayRef<double> voxel_size,
                                                            at::ArrayRef<double> origin) {
  PCSEG_CHECK_POINTS(points_in);
  PCSEG_CHECK_OFFSETS(offsets_in);
  TORCH_CHECK(voxel_size.size() == 3 && origin.size() == 3, "voxel_size and origin must have 3 values");
  const at::Tensor points = points_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  const int64_t n = points.size(0);
  const int64_t num_batches = offsets.size(0);
  TORCH_CHECK(num_batches == 0 ? n == 0 : offsets.data_ptr<int64_t>()[num_batches - 1] == n,
              "offsets[-1] must equal the number of points");

  SortedCells grid;
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_voxelize", [&] {
    grid = sort_into_cells(points.data_ptr<scalar_t>(), n, offsets.data_ptr<int64_t>(), num_batches,
                           voxel_size.data(), origin.data());
  });

  const int64_t num_voxels = static_cast<int64_t>(grid.cell_keys.size());
  at::Tensor coords = at::empty({num_voxels, 4}, points.options().dtype(at::kInt));
  at::Tensor counts = at::empty({num_voxels}, points.options().dtype(at::kLong));
  at::Tensor inverse = at::empty({n}, points.options().dtype(at::kLong));
  int32_t* coords_ptr = coords.data_ptr<int32_t>();
  int64_t* counts_ptr = counts.data_ptr<int64_t>();
  int64_t* inverse_ptr = inverse.data_ptr<int64_t>();
  const KeyLayout& layout = grid.layout;
  for (int d = 0; d < 3; ++d) {
    TORCH_CHECK(layout.min[d] >= INT32_MIN && layout.min[d] + layout.extent[d] <= INT32_MAX,
                "voxel coordinates do not fit in int32: voxel_size is too small for these points");
  }
  const int64_t* offsets_ptr = offsets.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_voxelize_coords", [&] {
    const scalar_t* p = points.data_ptr<scalar_t>();
    const scalar_t size[3] = {static_cast<scalar_t>(voxel_size[0]), static_cast<scalar_t>(voxel_size[1]),
                              static_cast<scalar_t>(voxel_size[2])};
    const scalar_t org[3] = {static_cast<scalar_t>(origin[0]), static_cast<scalar_t>(origin[1]),
                             static_cast<scalar_t>(origin[2])};
    int64_t batch = 0;
    for (int64_t v = 0; v < num_voxels; ++v) {
      // Coordinates recomputed from the voxel's first point: cheaper than unpacking the key.
      const int64_t first = grid.order[grid.cell_start[v]];
      while (offsets_ptr[batch] <= first) ++batch;  // voxels are sorted by batch first
      coords_ptr[v * 4 + 0] = static_cast<int32_t>(batch);
      for (int d = 0; d < 3; ++d) coords_ptr[v * 4 + 1 + d] = static_cast<int32_t>(cell_of(p[first * 3 + d], org[d], size[d]));
      counts_ptr[v] = grid.cell_start[v + 1] - grid.cell_start[v];
      for (int64_t i = grid.cell_start[v]; i < grid.cell_start[v + 1]; ++i) inverse_ptr[grid.order[i]] = v;
    }
  });
  return {coords, inverse, counts};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pcseg, m) {
  m.def("voxelize(Tensor points, Tensor offsets, float[] voxel_size, float[] origin) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pcseg, CPU, m) { m.impl("voxelize", &voxelize_cpu); }

}  // namespace pcseg
