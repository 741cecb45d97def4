// PCSEG_HOST_DEVICE marks small helpers compiled for both the CPU kernels and the CUDA kernels,
// so both devices share one implementation (and one ordering rule).
#pragma once

#ifdef __CUDACC__
#define PCSEG_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PCSEG_HOST_DEVICE inline
#endif
