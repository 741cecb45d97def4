// Grouping (gather of neighbour features) and its backward, CPU kernels and schemas.
//
// pcseg::group(features (B,N,C), idx (B,M,K) int64) -> (B,M,K,C); idx -1 gives zeros.
// pcseg::group_backward(grad (B,M,K,C), idx (B,M,K), num_points N) -> (B,N,C): the sum of the
// gradients of every slot that read a point (deterministic order).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>

namespace pcseg {
namespace {

void check_group_args(const at::Tensor& features, const at::Tensor& idx) {
  TORCH_CHECK(features.dim() == 3, "features must be (B, N, C), got ", features.sizes());
  TORCH_CHECK(idx.dim() == 3 && idx.scalar_type() == at::kLong, "idx must be int64 (B, M, K), got ", idx.sizes());
  TORCH_CHECK(idx.size(0) == features.size(0), "features and idx must have the same batch size");
}

at::Tensor group_cpu(const at::Tensor& features_in, const at::Tensor& idx_in) {
  check_group_args(features_in, idx_in);
  const at::Tensor features = features_in.contiguous();
  const at::Tensor idx = idx_in.contiguous();
  const int64_t B = features.size(0), N = features.size(1), C = features.size(2);
  const int64_t M = idx.size(1), K = idx.size(2);
  at::Tensor out = at::empty({B, M, K, C}, features.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, features.scalar_type(), "pcseg_group", [&] {
    const scalar_t* f = features.data_ptr<scalar_t>();
    const int64_t* ix = idx.data_ptr<int64_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * M * K, 1024, [&](int64_t s0, int64_t s1) {
      for (int64_t s = s0; s < s1; ++s) {
        const int64_t b = s / (M * K), i = ix[s];
        TORCH_CHECK(i >= -1 && i < N, "group: index ", i, " out of range for ", N, " points");
        if (i < 0) {
          std::memset(o + s * C, 0, sizeof(scalar_t) * C);
        } else {
          std::memcpy(o + s * C, f + (b * N + i) * C, sizeof(scalar_t) * C);
        }
      }
    });
  });
  return out;
}

at::Tensor group_backward_cpu(const at::Tensor& grad_in, const at::Tensor& idx_in, int64_t num_points) {
  TORCH_CHECK(grad_in.dim() == 4, "grad must be (B, M, K, C)");
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor idx = idx_in.contiguous();
  const int64_t B = grad.size(0), M = grad.size(1), K = grad.size(2), C = grad.size(3);
  at::Tensor out = at::zeros({B, num_points, C}, grad.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "pcseg_group_backward", [&] {
    const scalar_t* g = grad.data_ptr<scalar_t>();
    const int64_t* ix = idx.data_ptr<int64_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    // Parallel over clouds only, so every point's sum runs in a fixed order.
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        for (int64_t s = b * M * K; s < (b + 1) * M * K; ++s) {
          const int64_t i = ix[s];
          if (i < 0) continue;
          scalar_t* dst = o + (b * num_points + i) * C;
          const scalar_t* src = g + s * C;
          for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
        }
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pcseg, m) {
  m.def("group(Tensor features, Tensor idx) -> Tensor");
  m.def("group_backward(Tensor grad, Tensor idx, int num_points) -> Tensor");
}

TORCH_LIBRARY_IMPL(pcseg, CPU, m) {
  m.impl("group", &group_cpu);
  m.impl("group_backward", &group_backward_cpu);
}

}  // namespace pcseg
