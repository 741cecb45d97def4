// Furthest point sampling, CPU kernel and schema.
//
// pcseg::furthest_point_sample(points (N,3), offsets (B,), new_offsets (B,), start) -> idx (M,)
// Cloud b contributes new_offsets[b] - new_offsets[b-1] samples (global rows of points), the
// first being its local point `start`; each next sample is the point furthest (squared distance,
// points' precision) from those chosen, ties by smaller index. Clouds run in parallel.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include "common/checks.h"

namespace pcseg {
namespace {

template <typename scalar_t>
void sample_one_cloud(const scalar_t* points, int64_t count, int64_t num_samples, int64_t start, int64_t global_offset,
                      int64_t* out) {
  // Structure of arrays so the distance update vectorizes.
  std::vector<scalar_t> xs(count), ys(count), zs(count), min_dist(count, std::numeric_limits<scalar_t>::infinity());
  for (int64_t i = 0; i < count; ++i) {
    xs[i] = points[i * 3];
    ys[i] = points[i * 3 + 1];
    zs[i] = points[i * 3 + 2];
  }
  scalar_t* x = xs.data();
  scalar_t* y = ys.data();
  scalar_t* z = zs.data();
  scalar_t* md = min_dist.data();
  int64_t current = start;
  for (int64_t s = 0; s < num_samples; ++s) {
    out[s] = global_offset + current;
    if (s + 1 == num_samples) break;
    const scalar_t cx = x[current], cy = y[current], cz = z[current];
    scalar_t furthest = -1;
#pragma omp simd reduction(max : furthest)
    for (int64_t i = 0; i < count; ++i) {
      const scalar_t dx = x[i] - cx, dy = y[i] - cy, dz = z[i] - cz;
      const scalar_t d = dx * dx + dy * dy + dz * dz;
      const scalar_t kept = d < md[i] ? d : md[i];
      md[i] = kept;
      furthest = kept > furthest ? kept : furthest;
    }
    int64_t next = 0;
    while (md[next] != furthest) ++next;  // first index holding the maximum
    current = next;
  }
}

at::Tensor furthest_point_sample_cpu(const at::Tensor& points_in, const at::Tensor& offsets_in,
                                     const at::Tensor& new_offsets_in, int64_t start) {
  PCSEG_CHECK_POINTS(points_in);
  PCSEG_CHECK_OFFSETS(offsets_in);
  PCSEG_CHECK_OFFSETS(new_offsets_in);
  TORCH_CHECK(offsets_in.size(0) == new_offsets_in.size(0), "offsets and new_offsets must have the same length");
  const at::Tensor points = points_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  const at::Tensor new_offsets = new_offsets_in.contiguous();
  const int64_t num_batches = offsets.size(0);
  const int64_t* off = offsets.data_ptr<int64_t>();
  const int64_t* new_off = new_offsets.data_ptr<int64_t>();
  const int64_t total = num_batches ? new_off[num_batches - 1] : 0;
  for (int64_t b = 0; b < num_batches; ++b) {
    const int64_t count = off[b] - (b ? off[b - 1] : 0), samples = new_off[b] - (b ? new_off[b - 1] : 0);
    TORCH_CHECK(samples >= 0 && samples <= count, "cloud ", b, " has ", count, " points, cannot sample ", samples);
    TORCH_CHECK(samples == 0 || (start >= 0 && start < count), "start ", start, " is outside cloud ", b);
  }
  at::Tensor idx = at::empty({total}, points.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_fps", [&] {
    const scalar_t* p = points.data_ptr<scalar_t>();
    int64_t* out = idx.data_ptr<int64_t>();
    at::parallel_for(0, num_batches, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t first = b ? off[b - 1] : 0, out_first = b ? new_off[b - 1] : 0;
        const int64_t samples = new_off[b] - out_first;
        if (samples > 0) sample_one_cloud(p + first * 3, off[b] - first, samples, start, first, out + out_first);
      }
    });
  });
  return idx;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pcseg, m) {
  m.def("furthest_point_sample(Tensor points, Tensor offsets, Tensor new_offsets, int start) -> Tensor");
}

TORCH_LIBRARY_IMPL(pcseg, CPU, m) { m.impl("furthest_point_sample", &furthest_point_sample_cpu); }

}  // namespace pcseg
