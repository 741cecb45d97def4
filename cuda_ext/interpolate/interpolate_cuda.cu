// Weighted interpolation and its feature gradient, CUDA kernels (backward sums with atomics).
#include <torch/library.h>

#include "common/cuda_compat.cuh"

namespace pcseg {
namespace {

template <typename scalar_t>
__global__ void interpolate_kernel(const scalar_t* __restrict__ features, const int64_t* __restrict__ idx,
                                   const scalar_t* __restrict__ weight, int64_t n, int64_t m, int64_t k, int64_t c,
                                   int64_t total, scalar_t* __restrict__ out) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)blockDim.x * gridDim.x) {
    const int64_t row = e / c, ch = e % c, b = row / m;
    scalar_t acc = 0;
    for (int64_t j = 0; j < k; ++j) {  // same order as the CPU kernel
      const int64_t i = idx[row * k + j];
      if (i >= 0) acc += weight[row * k + j] * features[(b * n + i) * c + ch];
    }
    out[e] = acc;
  }
}

template <typename scalar_t>
__global__ void interpolate_backward_kernel(const scalar_t* __restrict__ grad, const int64_t* __restrict__ idx,
                                            const scalar_t* __restrict__ weight, int64_t n, int64_t m, int64_t k,
                                            int64_t c, int64_t total, scalar_t* __restrict__ out) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)blockDim.x * gridDim.x) {
    const int64_t row = e / c, ch = e % c, b = row / m;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t i = idx[row * k + j];
      if (i >= 0) atomicAdd(out + (b * n + i) * c + ch, weight[row * k + j] * grad[e]);
    }
  }
}

at::Tensor three_interpolate_cuda(const at::Tensor& features_in, const at::Tensor& idx_in, const at::Tensor& weight_in) {
  TORCH_CHECK(features_in.dim() == 3 && idx_in.dim() == 3 && idx_in.scalar_type() == at::kLong,
              "three_interpolate expects features (B,N,C) and int64 idx (B,M,K)");
  TORCH_CHECK(weight_in.sizes() == idx_in.sizes() && weight_in.scalar_type() == features_in.scalar_type(),
              "weight must have the shape of idx and the dtype of features");
  cuda::DeviceGuard guard(features_in);
  const at::Tensor features = features_in.contiguous(), idx = idx_in.contiguous(), weight = weight_in.contiguous();
  const int64_t B = features.size(0), N = features.size(1), C = features.size(2), M = idx.size(1), K = idx.size(2);
  at::Tensor out = at::empty({B, M, C}, features.options());
  const int64_t total = out.numel();
  if (total == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "pcseg_three_interpolate_cuda", [&] {
    interpolate_kernel<scalar_t><<<cuda::blocks_for(total), cuda::kThreads, 0, cuda::current_stream()>>>(
        features.data_ptr<scalar_t>(), idx.data_ptr<int64_t>(), weight.data_ptr<scalar_t>(), N, M, K, C, total,
        out.data_ptr<scalar_t>());
  });
  PCSEG_CUDA_CHECK_LAUNCH();
  return out;
}

at::Tensor three_interpolate_backward_cuda(const at::Tensor& grad_in, const at::Tensor& idx_in, const at::Tensor& weight_in,
                                           int64_t num_points) {
  TORCH_CHECK(grad_in.dim() == 3, "grad must be (B, M, C)");
  cuda::DeviceGuard guard(grad_in);
  const at::Tensor grad = grad_in.contiguous(), idx = idx_in.contiguous();
  const at::Tensor weight = weight_in.contiguous().to(grad.scalar_type());
  const int64_t B = grad.size(0), M = grad.size(1), C = grad.size(2), K = idx.size(2);
  at::Tensor out = at::zeros({B, num_points, C}, grad.options());
  const int64_t total = grad.numel();
  if (total == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "pcseg_three_interpolate_backward_cuda", [&] {
    interpolate_backward_kernel<scalar_t><<<cuda::blocks_for(total), cuda::kThreads, 0, cuda::current_stream()>>>(
        grad.data_ptr<scalar_t>(), idx.data_ptr<int64_t>(), weight.data_ptr<scalar_t>(), num_points, M, K, C, total,
        out.data_ptr<scalar_t>());
  });
  PCSEG_CUDA_CHECK_LAUNCH();
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(pcseg, CUDA, m) {
  m.impl("three_interpolate", &three_interpolate_cuda);
  m.impl("three_interpolate_backward", &three_interpolate_backward_cuda);
}

}  // namespace pcseg
