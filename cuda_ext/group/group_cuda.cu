// Grouping and its backward, CUDA kernels (one thread per output element; the backward sums with
// atomics, so its float rounding order may differ from the CPU's fixed order). Like the CPU
// kernels they take float64/32, half and bfloat16 (what autocast feeds them); the backward
// accumulates half/bfloat16 gradients in float32 and rounds once at the end.
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include "common/cuda_compat.cuh"

namespace pcseg {
namespace {

template <typename scalar_t>
__global__ void group_kernel(const scalar_t* __restrict__ features, const int64_t* __restrict__ idx, int64_t n,
                             int64_t mk, int64_t c, int64_t total, scalar_t* __restrict__ out) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)blockDim.x * gridDim.x) {
    const int64_t slot = e / c, ch = e % c, b = slot / mk, i = idx[slot];
    out[e] = i < 0 ? scalar_t(0) : features[(b * n + i) * c + ch];
  }
}

template <typename scalar_t, typename acc_t>
__global__ void group_backward_kernel(const scalar_t* __restrict__ grad, const int64_t* __restrict__ idx, int64_t n,
                                      int64_t mk, int64_t c, int64_t total, acc_t* __restrict__ out) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)blockDim.x * gridDim.x) {
    const int64_t slot = e / c, ch = e % c, b = slot / mk, i = idx[slot];
    if (i >= 0) atomicAdd(out + (b * n + i) * c + ch, static_cast<acc_t>(grad[e]));
  }
}

at::Tensor group_cuda(const at::Tensor& features_in, const at::Tensor& idx_in) {
  TORCH_CHECK(features_in.dim() == 3 && idx_in.dim() == 3 && idx_in.scalar_type() == at::kLong,
              "group expects features (B,N,C) and int64 idx (B,M,K)");
  cuda::DeviceGuard guard(features_in);
  const at::Tensor features = features_in.contiguous(), idx = idx_in.contiguous();
  const int64_t B = features.size(0), N = features.size(1), C = features.size(2), M = idx.size(1), K = idx.size(2);
  at::Tensor out = at::empty({B, M, K, C}, features.options());
  const int64_t total = out.numel();
  if (total == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, features.scalar_type(), "pcseg_group_cuda", [&] {
    group_kernel<scalar_t><<<cuda::blocks_for(total), cuda::kThreads, 0, cuda::current_stream()>>>(
        features.data_ptr<scalar_t>(), idx.data_ptr<int64_t>(), N, M * K, C, total, out.data_ptr<scalar_t>());
  });
  PCSEG_CUDA_CHECK_LAUNCH();
  return out;
}

at::Tensor group_backward_cuda(const at::Tensor& grad_in, const at::Tensor& idx_in, int64_t num_points) {
  TORCH_CHECK(grad_in.dim() == 4, "grad must be (B, M, K, C)");
  cuda::DeviceGuard guard(grad_in);
  const at::Tensor grad = grad_in.contiguous(), idx = idx_in.contiguous();
  const int64_t B = grad.size(0), M = grad.size(1), K = grad.size(2), C = grad.size(3);
  const bool narrow = grad.scalar_type() == at::kHalf || grad.scalar_type() == at::kBFloat16;
  at::Tensor out = at::zeros({B, num_points, C}, grad.options().dtype(narrow ? at::kFloat : grad.scalar_type()));
  const int64_t total = grad.numel();
  if (total == 0) return out.to(grad.scalar_type());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "pcseg_group_backward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;  // float for half/bfloat16/float, double for double
    group_backward_kernel<scalar_t, acc_t><<<cuda::blocks_for(total), cuda::kThreads, 0, cuda::current_stream()>>>(
        grad.data_ptr<scalar_t>(), idx.data_ptr<int64_t>(), num_points, M * K, C, total, out.data_ptr<acc_t>());
  });
  PCSEG_CUDA_CHECK_LAUNCH();
  return out.to(grad.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(pcseg, CUDA, m) {
  m.impl("group", &group_cuda);
  m.impl("group_backward", &group_backward_cuda);
}

}  // namespace pcseg
