// Argument checks shared by the kernels. The Python wrappers (pcseg/ops) validate user input with
// friendly messages first; these guard the raw operators when they are called directly.
#pragma once

#include <ATen/ATen.h>

#define PCSEG_CHECK_POINTS(t)                                                                   \
  TORCH_CHECK((t).dim() == 2 && (t).size(1) == 3, #t " must have shape (N, 3), got ", (t).sizes()); \
  TORCH_CHECK((t).is_floating_point(), #t " must be float32 or float64, got ", (t).scalar_type())

#define PCSEG_CHECK_OFFSETS(t)                                                                  \
  TORCH_CHECK((t).dim() == 1 && (t).scalar_type() == at::kLong, #t " must be an int64 (B,) tensor")

#define PCSEG_CHECK_SAME_DEVICE(a, b) \
  TORCH_CHECK((a).device() == (b).device(), #a " and " #b " must be on the same device")

namespace pcseg {

// Inputs of the neighbour searches (ball query and kNN, CPU and CUDA): (N,3) points and (M,3)
// queries of one dtype on one device, with ragged offsets giving one entry per cloud for each.
inline void check_neighbor_inputs(const at::Tensor& points, const at::Tensor& queries, const at::Tensor& points_offsets,
                                  const at::Tensor& queries_offsets) {
  PCSEG_CHECK_POINTS(points);
  PCSEG_CHECK_POINTS(queries);
  PCSEG_CHECK_OFFSETS(points_offsets);
  PCSEG_CHECK_OFFSETS(queries_offsets);
  PCSEG_CHECK_SAME_DEVICE(points, queries);
  TORCH_CHECK(points.scalar_type() == queries.scalar_type(), "points and queries must have the same dtype");
  TORCH_CHECK(points_offsets.size(0) == queries_offsets.size(0), "points and queries must have the same number of clouds");
}

}  // namespace pcseg
