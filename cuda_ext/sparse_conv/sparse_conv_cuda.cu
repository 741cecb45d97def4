// CUDA kernels of pcseg::sparse_kernel_map and pcseg::sparse_conv_forward (contracts in
// sparse_conv.cpp): a GPU hash table built with atomicCAS, one thread per (offset, output) query,
// and per offset a gather kernel, one cuBLAS GEMM (at::mm_out) and a scatter-add kernel. Within
// one offset output rows are distinct, so the scatter adds without atomics: bit-reproducible.
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include "common/cuda_compat.cuh"
#include "sparse_conv/sparse_hash.h"

namespace pcseg {
namespace {

__global__ void insert_keys_kernel(const int64_t* __restrict__ keys, int64_t n, int64_t* table_keys,
                                   int32_t* table_rows, int64_t mask) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t key = keys[i];
    if (key < 0) continue;  // keys are validated non-negative on the Python side
    uint64_t slot = sparse::hash_key(key) & static_cast<uint64_t>(mask);
    while (true) {
      const unsigned long long previous =
          atomicCAS(reinterpret_cast<unsigned long long*>(table_keys + slot),
                    static_cast<unsigned long long>(sparse::kEmptyKey), static_cast<unsigned long long>(key));
      if (previous == static_cast<unsigned long long>(sparse::kEmptyKey) ||
          previous == static_cast<unsigned long long>(key)) {
        table_rows[slot] = static_cast<int32_t>(i);
        break;
      }
      slot = (slot + 1) & static_cast<uint64_t>(mask);
    }
  }
}

__global__ void query_kernel(const int64_t* __restrict__ table_keys, const int32_t* __restrict__ table_rows,
                             int64_t mask, const int64_t* __restrict__ query, const int64_t* __restrict__ deltas,
                             int64_t m, int64_t num_offsets, int64_t skip, int32_t* __restrict__ neighbour) {
  const int64_t total = m * num_offsets;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = t / m, o = t - k * m;
    neighbour[t] = (k == skip) ? -1 : sparse::table_find(table_keys, table_rows, mask, query[o] + deltas[k]);
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_map_cuda(const at::Tensor& keys_in, const at::Tensor& query_in,
                                                               const at::Tensor& deltas_in, int64_t skip) {
  TORCH_CHECK(keys_in.dim() == 1 && keys_in.scalar_type() == at::kLong, "keys must be an int64 (N,) tensor");
  TORCH_CHECK(query_in.dim() == 1 && query_in.scalar_type() == at::kLong, "query_keys must be an int64 (M,) tensor");
  TORCH_CHECK(deltas_in.dim() == 1 && deltas_in.scalar_type() == at::kLong, "deltas must be an int64 (K,) tensor");
  TORCH_CHECK(keys_in.is_cuda() && query_in.device() == keys_in.device() && deltas_in.device() == keys_in.device(),
              "keys, query_keys and deltas must be on one CUDA device");
  TORCH_CHECK(keys_in.size(0) < (int64_t(1) << 31), "too many voxels for int32 rows");
  cuda::DeviceGuard guard(keys_in);
  cudaStream_t stream = cuda::current_stream();
  const at::Tensor keys = keys_in.contiguous(), query = query_in.contiguous(), deltas = deltas_in.contiguous();
  const int64_t n = keys.size(0), m = query.size(0), num_offsets = deltas.size(0);

  const int64_t capacity = sparse::table_capacity(n);
  at::Tensor table_keys = at::full({capacity}, sparse::kEmptyKey, keys.options());
  at::Tensor table_rows = at::empty({capacity}, keys.options().dtype(at::kInt));
  if (n > 0) {
    insert_keys_kernel<<<cuda::blocks_for(n), cuda::kThreads, 0, stream>>>(
        keys.data_ptr<int64_t>(), n, table_keys.data_ptr<int64_t>(), table_rows.data_ptr<int32_t>(), capacity - 1);
    PCSEG_CUDA_CHECK_LAUNCH();
  }
  at::Tensor neighbour = at::empty({num_offsets, m}, keys.options().dtype(at::kInt));
  if (m * num_offsets > 0) {
    query_kernel<<<cuda::blocks_for(m * num_offsets), cuda::kThreads, 0, stream>>>(
        table_keys.data_ptr<int64_t>(), table_rows.data_ptr<int32_t>(), capacity - 1, query.data_ptr<int64_t>(),
        deltas.data_ptr<int64_t>(), m, num_offsets, skip, neighbour.data_ptr<int32_t>());
    PCSEG_CUDA_CHECK_LAUNCH();
  }
  // Row-major nonzero: grouped by offset, ascending output row inside a group (as on the CPU).
  const at::Tensor hit = neighbour.ge(0);
  const at::Tensor where = at::nonzero(hit);  // (P, 2) int64: (offset, output row)
  at::Tensor out_idx = where.select(1, 1).contiguous();
  at::Tensor in_idx = neighbour.view({-1}).index_select(0, where.select(1, 0) * m + out_idx).to(at::kLong);
  at::Tensor counts = hit.sum(1, /*keepdim=*/false, at::kLong).cpu();
  return {in_idx, out_idx, counts};
}

template <typename scalar_t>
__global__ void gather_rows_kernel(const scalar_t* __restrict__ src, const int64_t* __restrict__ rows, int64_t n,
                                   int64_t channels, scalar_t* __restrict__ dst) {
  const int64_t total = n * channels;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(blockDim.x) * gridDim.x) {
    const int64_t r = t / channels, c = t - r * channels;
    dst[t] = src[rows[r] * channels + c];
  }
}

// Rows are distinct within one call (one kernel offset), so plain read-modify-write is race-free.
template <typename scalar_t, typename acc_t>
__global__ void scatter_add_rows_kernel(const scalar_t* __restrict__ src, const int64_t* __restrict__ rows, int64_t n,
                                        int64_t channels, acc_t* __restrict__ dst) {
  const int64_t total = n * channels;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(blockDim.x) * gridDim.x) {
    const int64_t r = t / channels, c = t - r * channels;
    dst[rows[r] * channels + c] += static_cast<acc_t>(src[t]);
  }
}

at::Tensor conv_forward_cuda(const at::Tensor& feats_in, const at::Tensor& weight_in, const at::Tensor& in_idx_in,
                             const at::Tensor& out_idx_in, const at::Tensor& counts_in, int64_t num_out,
                             int64_t identity) {
  TORCH_CHECK(feats_in.is_cuda() && weight_in.device() == feats_in.device() && in_idx_in.device() == feats_in.device() &&
                  out_idx_in.device() == feats_in.device(),
              "feats, weight, in_idx and out_idx must be on one CUDA device");
  TORCH_CHECK(feats_in.dim() == 2 && weight_in.dim() == 3 && weight_in.size(1) == feats_in.size(1),
              "feats must be (N, C_in) and weight (K, C_in, C_out)");
  TORCH_CHECK(weight_in.scalar_type() == feats_in.scalar_type(), "weight and feats must have one dtype");
  TORCH_CHECK(in_idx_in.scalar_type() == at::kLong && out_idx_in.scalar_type() == at::kLong &&
                  in_idx_in.numel() == out_idx_in.numel(),
              "in_idx and out_idx must be int64 tensors of one length");
  TORCH_CHECK(counts_in.numel() == weight_in.size(0), "counts needs one entry per kernel offset");
  TORCH_CHECK(identity < weight_in.size(0), "identity offset out of range");
  TORCH_CHECK(identity < 0 || num_out == feats_in.size(0), "an identity offset needs num_out == N");
  cuda::DeviceGuard guard(feats_in);
  cudaStream_t stream = cuda::current_stream();
  const at::Tensor feats = feats_in.contiguous(), weight = weight_in.contiguous();
  const at::Tensor in_idx = in_idx_in.contiguous(), out_idx = out_idx_in.contiguous();
  const at::Tensor counts = counts_in.to(at::kCPU, at::kLong).contiguous();
  const int64_t* count_ptr = counts.data_ptr<int64_t>();
  const int64_t num_offsets = weight.size(0), c_in = weight.size(1), c_out = weight.size(2);
  const auto acc_type = at::toOpMathType(feats.scalar_type());

  int64_t largest = 0, total = 0;
  for (int64_t k = 0; k < num_offsets; ++k) {
    if (k == identity) continue;
    largest = std::max(largest, count_ptr[k]);
    total += count_ptr[k];
  }
  TORCH_CHECK(total == in_idx.numel(), "counts do not add up to the number of pairs");
  at::Tensor out = identity >= 0 ? at::mm(feats, weight[identity]).to(acc_type).contiguous()
                                 : at::zeros({num_out, c_out}, feats.options().dtype(acc_type));
  at::Tensor gathered = at::empty({largest, c_in}, feats.options());
  at::Tensor product = at::empty({largest, c_out}, feats.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(), "pcseg_sparse_conv_forward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    int64_t start = 0;
    for (int64_t k = 0; k < num_offsets; ++k) {
      const int64_t n = (k == identity) ? 0 : count_ptr[k];
      if (n == 0) continue;
      at::Tensor g = gathered.narrow(0, 0, n), p = product.narrow(0, 0, n);
      gather_rows_kernel<scalar_t><<<cuda::blocks_for(n * c_in), cuda::kThreads, 0, stream>>>(
          feats.data_ptr<scalar_t>(), in_idx.data_ptr<int64_t>() + start, n, c_in, g.data_ptr<scalar_t>());
      PCSEG_CUDA_CHECK_LAUNCH();
      at::mm_out(p, g, weight[k]);
      scatter_add_rows_kernel<scalar_t, acc_t><<<cuda::blocks_for(n * c_out), cuda::kThreads, 0, stream>>>(
          p.data_ptr<scalar_t>(), out_idx.data_ptr<int64_t>() + start, n, c_out, out.data_ptr<acc_t>());
      PCSEG_CUDA_CHECK_LAUNCH();
      start += n;
    }
  });
  return out.scalar_type() == feats.scalar_type() ? out : out.to(feats.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(pcseg, CUDA, m) {
  m.impl("sparse_kernel_map", &kernel_map_cuda);
  m.impl("sparse_conv_forward", &conv_forward_cuda);
}

}  // namespace pcseg
