// CPU execution of sparse convolutions (conv_cpu.cpp); the ops' contracts are in sparse_conv.cpp.
#pragma once
#include <ATen/ATen.h>

#include <tuple>

namespace pcseg {

// sparse_conv_forward on CPU tensors whose arguments were already checked.
at::Tensor conv_forward_cpu_impl(const at::Tensor& feats, const at::Tensor& weight, const at::Tensor& in_idx,
                                 const at::Tensor& out_idx, const at::Tensor& counts, int64_t num_out,
                                 int64_t identity);

// sparse_conv_weight_grad: (K, C_in, C_out) in feats' dtype.
at::Tensor conv_weight_grad_cpu(const at::Tensor& feats, const at::Tensor& grad_out, const at::Tensor& in_idx,
                                const at::Tensor& out_idx, const at::Tensor& counts, int64_t identity);

// sparse_conv_backward: (grad_feats (N, C_in), grad_weight (K, C_in, C_out)) in feats' dtype; an
// empty (0,) tensor for a gradient that was not asked for.
std::tuple<at::Tensor, at::Tensor> conv_backward_cpu_impl(const at::Tensor& feats, const at::Tensor& grad_out,
                                                          const at::Tensor& weight, const at::Tensor& in_idx,
                                                          const at::Tensor& out_idx, const at::Tensor& counts,
                                                          int64_t identity, bool need_feats, bool need_weight);

}  // namespace pcseg
