// Weighted interpolation of neighbour features (PointNet++ feature propagation), CPU kernels.
//
// pcseg::three_interpolate(features (B,N,C), idx (B,M,K) int64, weight (B,M,K)) -> (B,M,C):
//   out[b,m] = sum_k weight[b,m,k] * features[b, idx[b,m,k]]; idx -1 contributes nothing.
// pcseg::three_interpolate_backward(grad (B,M,C), idx, weight, num_points N) -> grad_features
//   (B,N,C), summed in a fixed order. (The weight gradient is computed in Python from `group`.)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

namespace pcseg {
namespace {

at::Tensor three_interpolate_cpu(const at::Tensor& features_in, const at::Tensor& idx_in, const at::Tensor& weight_in) {
  TORCH_CHECK(features_in.dim() == 3, "features must be (B, N, C), got ", features_in.sizes());
  TORCH_CHECK(idx_in.dim() == 3 && idx_in.scalar_type() == at::kLong, "idx must be int64 (B, M, K)");
  TORCH_CHECK(weight_in.sizes() == idx_in.sizes(), "weight must have the shape of idx");
  TORCH_CHECK(weight_in.scalar_type() == features_in.scalar_type(), "weight must have the dtype of features");
  const at::Tensor features = features_in.contiguous();
  const at::Tensor idx = idx_in.contiguous();
  const at::Tensor weight = weight_in.contiguous();
  const int64_t B = features.size(0), N = features.size(1), C = features.size(2);
  const int64_t M = idx.size(1), K = idx.size(2);
  at::Tensor out = at::zeros({B, M, C}, features.options());
  AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "pcseg_three_interpolate", [&] {
    const scalar_t* f = features.data_ptr<scalar_t>();
    const int64_t* ix = idx.data_ptr<int64_t>();
    const scalar_t* w = weight.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * M, 256, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / M;
        scalar_t* dst = o + r * C;
        for (int64_t j = 0; j < K; ++j) {
          const int64_t i = ix[r * K + j];
          if (i < 0) continue;
          TORCH_CHECK(i < N, "three_interpolate: index ", i, " out of range for ", N, " points");
          const scalar_t wj = w[r * K + j];
          const scalar_t* src = f + (b * N + i) * C;
          for (int64_t c = 0; c < C; ++c) dst[c] += wj * src[c];
        }
      }
    });
  });
  return out;
}

at::Tensor three_interpolate_backward_cpu(const at::Tensor& grad_in, const at::Tensor& idx_in, const at::Tensor& weight_in,
                                          int64_t num_points) {
  TORCH_CHECK(grad_in.dim() == 3, "grad must be (B, M, C)");
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor idx = idx_in.contiguous();
  const at::Tensor weight = weight_in.contiguous().to(grad.scalar_type());
  const int64_t B = grad.size(0), M = grad.size(1), C = grad.size(2), K = idx.size(2);
  at::Tensor out = at::zeros({B, num_points, C}, grad.options());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "pcseg_three_interpolate_backward", [&] {
    const scalar_t* g = grad.data_ptr<scalar_t>();
    const int64_t* ix = idx.data_ptr<int64_t>();
    const scalar_t* w = weight.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        for (int64_t r = b * M; r < (b + 1) * M; ++r) {
          for (int64_t j = 0; j < K; ++j) {
            const int64_t i = ix[r * K + j];
            if (i < 0) continue;
            const scalar_t wj = w[r * K + j];
            scalar_t* dst = o + (b * num_points + i) * C;
            const scalar_t* src = g + r * C;
            for (int64_t c = 0; c < C; ++c) dst[c] += wj * src[c];
          }
        }
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pcseg, m) {
  m.def("three_interpolate(Tensor features, Tensor idx, Tensor weight) -> Tensor");
  m.def("three_interpolate_backward(Tensor grad, Tensor idx, Tensor weight, int num_points) -> Tensor");
}

TORCH_LIBRARY_IMPL(pcseg, CPU, m) {
  m.impl("three_interpolate", &three_interpolate_cpu);
  m.impl("three_interpolate_backward", &three_interpolate_backward_cpu);
}

}  // namespace pcseg
