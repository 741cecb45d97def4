// Furthest point sampling, CUDA kernel: one block per cloud; each step updates every point's
// distance to the chosen set and finds the furthest point with a block reduction (ties -> the
// smaller index, as on the CPU).
#include <torch/library.h>

#include <limits>

#include "common/checks.h"
#include "common/cuda_compat.cuh"

namespace pcseg {
namespace {

constexpr int kFpsThreads = 512;

template <typename scalar_t>
__global__ void fps_kernel(const scalar_t* __restrict__ points, const int64_t* __restrict__ offsets,
                           const int64_t* __restrict__ new_offsets, int64_t start, scalar_t* __restrict__ min_dist,
                           int64_t* __restrict__ out) {
  __shared__ scalar_t best_value[kFpsThreads];
  __shared__ int64_t best_index[kFpsThreads];
  const int64_t b = blockIdx.x;
  const int64_t first = b ? offsets[b - 1] : 0, count = offsets[b] - first;
  const int64_t out_first = b ? new_offsets[b - 1] : 0, samples = new_offsets[b] - out_first;
  if (samples <= 0) return;
  const scalar_t* p = points + first * 3;
  scalar_t* md = min_dist + first;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) md[i] = std::numeric_limits<scalar_t>::infinity();
  int64_t current = start;
  for (int64_t s = 0; s < samples; ++s) {
    if (threadIdx.x == 0) out[out_first + s] = first + current;
    if (s + 1 == samples) break;
    const scalar_t cx = p[current * 3], cy = p[current * 3 + 1], cz = p[current * 3 + 2];
    scalar_t value = -1;
    int64_t index = 0;
    for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
      const scalar_t d = cuda::exact_sq_dist(p[i * 3] - cx, p[i * 3 + 1] - cy, p[i * 3 + 2] - cz);
      const scalar_t kept = d < md[i] ? d : md[i];
      md[i] = kept;
      if (kept > value) {  // strided loop visits indices in increasing order: keeps the first max
        value = kept;
        index = i;
      }
    }
    best_value[threadIdx.x] = value;
    best_index[threadIdx.x] = index;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
      if (threadIdx.x < stride) {
        const scalar_t v = best_value[threadIdx.x + stride];
        const int64_t ix = best_index[threadIdx.x + stride];
        if (v > best_value[threadIdx.x] || (v == best_value[threadIdx.x] && ix < best_index[threadIdx.x])) {
          best_value[threadIdx.x] = v;
          best_index[threadIdx.x] = ix;
        }
      }
      __syncthreads();
    }
    current = best_index[0];
    __syncthreads();  // everyone has read the winner before the next step overwrites it
  }
}

at::Tensor furthest_point_sample_cuda(const at::Tensor& points_in, const at::Tensor& offsets_in,
                                      const at::Tensor& new_offsets_in, int64_t start) {
  PCSEG_CHECK_POINTS(points_in);
  PCSEG_CHECK_OFFSETS(offsets_in);
  PCSEG_CHECK_OFFSETS(new_offsets_in);
  PCSEG_CHECK_SAME_DEVICE(points_in, offsets_in);
  TORCH_CHECK(offsets_in.size(0) == new_offsets_in.size(0), "offsets and new_offsets must have the same length");
  cuda::DeviceGuard guard(points_in);
  const at::Tensor points = points_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous(), new_offsets = new_offsets_in.contiguous();
  const int64_t num_batches = offsets.size(0);
  // Sizes are validated on the host (one small copy), as on the CPU.
  const at::Tensor off_host = offsets.cpu(), new_host = new_offsets.cpu();
  for (int64_t b = 0; b < num_batches; ++b) {
    const int64_t count = off_host.data_ptr<int64_t>()[b] - (b ? off_host.data_ptr<int64_t>()[b - 1] : 0);
    const int64_t samples = new_host.data_ptr<int64_t>()[b] - (b ? new_host.data_ptr<int64_t>()[b - 1] : 0);
    TORCH_CHECK(samples >= 0 && samples <= count, "cloud ", b, " has ", count, " points, cannot sample ", samples);
    TORCH_CHECK(samples == 0 || (start >= 0 && start < count), "start ", start, " is outside cloud ", b);
  }
  const int64_t total = num_batches ? new_host.data_ptr<int64_t>()[num_batches - 1] : 0;
  at::Tensor idx = at::empty({total}, points.options().dtype(at::kLong));
  if (total == 0) return idx;
  at::Tensor min_dist = at::empty({points.size(0)}, points.options());
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "pcseg_fps_cuda", [&] {
    fps_kernel<scalar_t><<<num_batches, kFpsThreads, 0, cuda::current_stream()>>>(
        points.data_ptr<scalar_t>(), offsets.data_ptr<int64_t>(), new_offsets.data_ptr<int64_t>(), start,
        min_dist.data_ptr<scalar_t>(), idx.data_ptr<int64_t>());
  });
  PCSEG_CUDA_CHECK_LAUNCH();
  return idx;
}

}  // namespace

TORCH_LIBRARY_IMPL(pcseg, CUDA, m) { m.impl("furthest_point_sample", &furthest_point_sample_cuda); }

}  // namespace pcseg
