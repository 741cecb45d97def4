// The one place pcseg's CUDA sources get CUDA-only torch headers (current stream, device guard).
//
// CPU builds of torch ship ATen/ATen.h and torch/library.h but not
// c10/cuda/impl/cuda_cmake_macros.h, so ATen/cuda/CUDAContext.h and c10/cuda/* cannot compile
// against them. `.ci/compile_cuda` defines PCSEG_CUDA_COMPILE_CHECK and compiles every .cu file
// against such a torch: the stand-ins below keep the code compiling there; real builds use
// torch's own stream and guard. Include only this header for stream/guard needs.
#pragma once

#include <ATen/ATen.h>
#include <cuda_runtime.h>

#ifdef PCSEG_CUDA_COMPILE_CHECK
namespace pcseg {
namespace cuda {
// Compile-check stand-ins only: the produced object is never linked or run.
inline cudaStream_t current_stream() { return nullptr; }
struct DeviceGuard {
  explicit DeviceGuard(const at::Tensor&) {}
};
}  // namespace cuda
}  // namespace pcseg
#else
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
namespace pcseg {
namespace cuda {
inline cudaStream_t current_stream() { return at::cuda::getCurrentCUDAStream(); }
// Makes the tensor's GPU current for the scope (multi-GPU machines).
struct DeviceGuard {
  explicit DeviceGuard(const at::Tensor& tensor) : guard_(tensor.device()) {}
  c10::cuda::CUDAGuard guard_;
};
}  // namespace cuda
}  // namespace pcseg
#endif

// Raises a torch error when the last kernel launch failed.
#define PCSEG_CUDA_CHECK_LAUNCH()                                                      \
  do {                                                                                 \
    cudaError_t pcseg_launch_error = cudaGetLastError();                               \
    TORCH_CHECK(pcseg_launch_error == cudaSuccess, "pcseg CUDA kernel launch failed: ", \
                cudaGetErrorString(pcseg_launch_error));                               \
  } while (0)

namespace pcseg {
namespace cuda {
constexpr int kThreads = 256;
inline int blocks_for(int64_t n, int threads = kThreads) {
  int64_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > 65535 * 32 ? 65535 * 32 : blocks));
}

// Squared distance with rounding identical to the CPU kernels: no fused multiply-add, same order.
template <typename T>
__device__ __forceinline__ T exact_sq_dist(T dx, T dy, T dz);
template <>
__device__ __forceinline__ float exact_sq_dist<float>(float dx, float dy, float dz) {
  return __fadd_rn(__fadd_rn(__fmul_rn(dx, dx), __fmul_rn(dy, dy)), __fmul_rn(dz, dz));
}
template <>
__device__ __forceinline__ double exact_sq_dist<double>(double dx, double dy, double dz) {
  return __dadd_rn(__dadd_rn(__dmul_rn(dx, dx), __dmul_rn(dy, dy)), __dmul_rn(dz, dz));
}
}  // namespace cuda
}  // namespace pcseg
