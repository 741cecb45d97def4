// CPU execution of a sparse convolution: forward (also the input gradient, through the transposed
// map) and the weight gradient. Contracts of the ops are in sparse_conv.cpp.
//
// Forward, per kernel offset: the offset's pairs are cut into tiles of a fixed row count; each
// tile gathers its input rows into a thread-local buffer sized to stay in L2, multiplies it by
// weight[k] with one single-threaded BLAS call and scatter-adds the product rows while they are
// still in cache. One parallel region per offset (instead of gather, GEMM and scatter regions),
// distinct output rows inside an offset (no atomics), and tiles independent of the thread count,
// so results are the same for any number of threads. bfloat16/half products are rounded to their
// dtype (as at::mm gives them) and summed in float32, as the pure-PyTorch reference does.
//
// Backward (sparse_conv_backward), per offset: one pass over fixed tiles gathers each tile's grad_out
// rows once for both gradients (input gradient = the transposed product, scattered while in cache;
// weight gradient summed per lane in tile order, lanes added in order: the same bits for any
// thread count). The standalone weight-gradient op below is kept for callers that need only it.
//
// Weight gradient, per offset: grad_weight[k] = feats[in]^T @ grad_out[out], computed over fixed
// blocks of pairs (each block gathers both sides and runs one GEMM into its own partial) whose
// partials are summed in block order: deterministic, no atomics, independent of the thread count.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include "sparse_conv/conv_cpu.h"

#include <algorithm>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

namespace pcseg {
namespace {

// A (rows, cols) tensor over a raw buffer, for at::mm_out (the only BLAS entry point libtorch
// exports: at::native::cpublas::gemm is not a public symbol).
template <typename scalar_t>
at::Tensor rows_view(const scalar_t* p, int64_t rows, int64_t cols) {
  return at::from_blob(const_cast<scalar_t*>(p), {rows, cols},
                       at::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value));
}

// The identity offset's weight gradient feats^T @ grad (every row paired with itself), summed over
// fixed blocks of 512 rows in block order, in the accumulation type. One GEMM over all rows lets
// MKL split the rows (the reduction) among its threads from about 1k rows on, so the bits would
// depend on the thread count; GEMMs of 512 rows are not split.
at::Tensor identity_weight_grad(const at::Tensor& feats, const at::Tensor& grad, at::ScalarType acc_type) {
  // mm_out refuses inputs that require grad, and grad mode is per thread (the pool's threads do
  // not inherit a guard): plain detached views (the op's autograd is registered on its own)
  const at::Tensor f = feats.detach(), g = grad.detach();
  constexpr int64_t kBlock = 512;
  const int64_t n = f.size(0);
  const int64_t num_blocks = std::max<int64_t>(1, (n + kBlock - 1) / kBlock);
  at::Tensor partial = at::empty({num_blocks, f.size(1), g.size(1)}, f.options());
  at::parallel_for(0, num_blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = std::min(b * kBlock, n), rows = std::min(kBlock, n - r0);
      at::Tensor part = partial[b];
      at::mm_out(part, f.narrow(0, r0, rows).t(), g.narrow(0, r0, rows));
    }
  });
  at::Tensor sum = partial[0].to(acc_type);
  for (int64_t b = 1; b < num_blocks; ++b) sum.add_(partial[b]);
  return sum;
}

// Rows per tile: the gathered rows and their products together about 384 KiB (a fifth of L2),
// at least 128 rows (below that the per-call cost of a GEMM outweighs what it multiplies).
int64_t tile_rows(int64_t c_in, int64_t c_out, int64_t elem) {
  const int64_t bytes_per_row = (c_in + c_out) * elem;
  return std::max<int64_t>(128, (384 * 1024) / std::max<int64_t>(bytes_per_row, 1));
}

template <typename scalar_t>
void gather_rows(const scalar_t* src, const int64_t* idx, int64_t rows, int64_t width, scalar_t* dst) {
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * width, src + idx[r] * width, sizeof(scalar_t) * width);
}

// dst[idx[r]] += rows[r] for every r, in acc_t (the rows' indices are distinct within an offset).
template <typename scalar_t, typename acc_t>
void scatter_add_rows(const scalar_t* rows_ptr, const int64_t* idx, int64_t rows, int64_t width, acc_t* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    acc_t* __restrict__ d = dst + idx[r] * width;
    const scalar_t* __restrict__ row = rows_ptr + r * width;
    for (int64_t j = 0; j < width; ++j) d[j] += static_cast<acc_t>(row[j]);
  }
}

template <typename scalar_t, typename acc_t>
void forward_offsets(const at::Tensor& feats, const at::Tensor& weight, const int64_t* in_ptr, const int64_t* out_ptr,
                     const int64_t* count_ptr, int64_t identity, acc_t* out) {
  const int64_t num_offsets = weight.size(0), c_in = weight.size(1), c_out = weight.size(2);
  const scalar_t* src = feats.data_ptr<scalar_t>();
  const scalar_t* w = weight.data_ptr<scalar_t>();
  const int64_t tile = tile_rows(c_in, c_out, sizeof(scalar_t));
  int64_t start = 0;
  for (int64_t k = 0; k < num_offsets; ++k) {
    const int64_t n = (k == identity) ? 0 : count_ptr[k];
    if (n == 0) continue;
    const int64_t* ins = in_ptr + start;
    const int64_t* outs = out_ptr + start;
    const at::Tensor wk = rows_view(w + k * c_in * c_out, c_in, c_out);
    const int64_t num_tiles = (n + tile - 1) / tile;
    at::parallel_for(0, num_tiles, 1, [&](int64_t t0, int64_t t1) {
      // uninitialised thread-local buffers (a std::vector would zero them on every offset)
      at::Tensor gathered = at::empty({tile, c_in}, feats.options());
      at::Tensor product = at::empty({tile, c_out}, feats.options());
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t r0 = t * tile, rows = std::min(tile, n - r0);
        gather_rows(src, ins + r0, rows, c_in, gathered.data_ptr<scalar_t>());
        at::Tensor prod = product.narrow(0, 0, rows);
        at::mm_out(prod, gathered.narrow(0, 0, rows), wk);
        scatter_add_rows(product.data_ptr<scalar_t>(), outs + r0, rows, c_out, out);
      }
    });
    start += n;
  }
}

// Lanes of the fused backward: an offset's tiles are dealt round-robin to this many lanes (fewer
// when there are fewer tiles); each lane sums its tiles' weight-gradient GEMMs in tile order and
// the lanes are added in lane order, so the bits do not depend on the thread count.
constexpr int64_t kLanes = 8;

// Fused backward, per kernel offset: each tile gathers its grad_out rows once and uses them for
// both gradients: grad_feats[in] += grad_out[out] @ weight[k]^T (scatter while the product is in
// cache; input rows are distinct within an offset) and the lane's sum += feats[in]^T @ grad_out[out].
template <typename scalar_t, typename acc_t>
void backward_offsets(const at::Tensor& feats, const at::Tensor& grad, const at::Tensor& weight,
                      const int64_t* in_ptr, const int64_t* out_ptr, const int64_t* count_ptr, int64_t identity,
                      acc_t* grad_feats, const at::Tensor& grad_weight) {
  const int64_t num_offsets = weight.size(0), c_in = weight.size(1), c_out = weight.size(2);
  const bool need_weight = grad_weight.defined();
  const scalar_t* f = feats.data_ptr<scalar_t>();
  const scalar_t* g = grad.data_ptr<scalar_t>();
  const scalar_t* w = weight.data_ptr<scalar_t>();
  const int64_t tile = tile_rows(2 * c_in, c_out, sizeof(scalar_t));  // grad rows, products, feats rows
  const int64_t wsize = c_in * c_out;
  const auto opts = grad.options();
  int64_t start = 0;
  for (int64_t k = 0; k < num_offsets; ++k) {
    const int64_t n = (k == identity) ? 0 : count_ptr[k];
    if (n == 0) {
      if (need_weight && k != identity) grad_weight[k].zero_();
      continue;
    }
    const int64_t* ins = in_ptr + start;
    const int64_t* outs = out_ptr + start;
    const at::Tensor wk_t = rows_view(w + k * wsize, c_in, c_out).t();  // (C_out, C_in), no copy
    const int64_t num_tiles = (n + tile - 1) / tile;
    const int64_t lanes = std::min(kLanes, num_tiles);
    at::Tensor lane_sums = need_weight ? at::empty({lanes, c_in, c_out}, grad_weight.options()) : at::Tensor();
    at::parallel_for(0, lanes, 1, [&](int64_t l0, int64_t l1) {
      at::Tensor g_rows = at::empty({tile, c_out}, opts);
      at::Tensor f_rows = need_weight ? at::empty({tile, c_in}, opts) : at::Tensor();
      at::Tensor prod = grad_feats ? at::empty({tile, c_in}, opts) : at::Tensor();
      constexpr bool same = std::is_same<scalar_t, acc_t>::value;
      at::Tensor part = (need_weight && !same) ? at::empty({c_in, c_out}, opts) : at::Tensor();
      for (int64_t l = l0; l < l1; ++l) {
        at::Tensor lane = need_weight ? lane_sums[l] : at::Tensor();
        for (int64_t t = l; t < num_tiles; t += lanes) {
          const int64_t r0 = t * tile, rows = std::min(tile, n - r0);
          gather_rows(g, outs + r0, rows, c_out, g_rows.data_ptr<scalar_t>());
          const at::Tensor gv = g_rows.narrow(0, 0, rows);
          if (grad_feats) {
            at::Tensor pv = prod.narrow(0, 0, rows);
            at::mm_out(pv, gv, wk_t);
            scatter_add_rows(prod.data_ptr<scalar_t>(), ins + r0, rows, c_in, grad_feats);
          }
          if (!need_weight) continue;
          gather_rows(f, ins + r0, rows, c_in, f_rows.data_ptr<scalar_t>());
          const at::Tensor fv_t = f_rows.narrow(0, 0, rows).t();
          if constexpr (same) {
            if (t == l) at::mm_out(lane, fv_t, gv);
            else lane.addmm_(fv_t, gv);
          } else {  // half/bfloat16: the tile's GEMM rounded to its dtype, summed in float32
            at::mm_out(part, fv_t, gv);
            acc_t* __restrict__ dst = lane.data_ptr<acc_t>();
            const scalar_t* __restrict__ src = part.data_ptr<scalar_t>();
            for (int64_t j = 0; j < wsize; ++j) dst[j] = (t == l ? acc_t(0) : dst[j]) + static_cast<acc_t>(src[j]);
          }
        }
      }
    });
    if (need_weight) {
      at::Tensor gw_k = grad_weight[k];
      gw_k.copy_(lane_sums[0]);
      for (int64_t l = 1; l < lanes; ++l) gw_k.add_(lane_sums[l]);
    }
    start += n;
  }
}

}  // namespace

at::Tensor conv_forward_cpu_impl(const at::Tensor& feats_in, const at::Tensor& weight_in, const at::Tensor& in_idx_in,
                            const at::Tensor& out_idx_in, const at::Tensor& counts, int64_t num_out, int64_t identity) {
  const at::Tensor feats = feats_in.contiguous(), weight = weight_in.contiguous();
  const at::Tensor in_idx = in_idx_in.contiguous(), out_idx = out_idx_in.contiguous();
  const int64_t num_offsets = weight.size(0), c_in = weight.size(1), c_out = weight.size(2);
  const auto acc_type = at::toOpMathType(feats.scalar_type());
  const int64_t* count_ptr = counts.data_ptr<int64_t>();
  int64_t total = 0;
  for (int64_t k = 0; k < num_offsets; ++k) total += (k == identity) ? 0 : count_ptr[k];
  TORCH_CHECK(total == in_idx.numel(), "counts do not add up to the number of pairs");
  // the centre offset of a submanifold map: one plain (multi-threaded) GEMM writes every row
  at::Tensor out = identity >= 0 ? at::mm(feats, weight[identity]).to(acc_type).contiguous()
                                 : at::zeros({num_out, c_out}, feats.options().dtype(acc_type));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(), "pcseg_sparse_conv_forward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    forward_offsets<scalar_t, acc_t>(feats, weight, in_idx.data_ptr<int64_t>(), out_idx.data_ptr<int64_t>(),
                                     count_ptr, identity, out.data_ptr<acc_t>());
  });
  return out.scalar_type() == feats.scalar_type() ? out : out.to(feats.scalar_type());
}

at::Tensor conv_weight_grad_cpu(const at::Tensor& feats_in, const at::Tensor& grad_in, const at::Tensor& in_idx_in,
                                const at::Tensor& out_idx_in, const at::Tensor& counts, int64_t identity) {
  TORCH_CHECK(feats_in.dim() == 2 && grad_in.dim() == 2, "feats and grad_out must be 2-D");
  TORCH_CHECK(feats_in.scalar_type() == grad_in.scalar_type(), "feats and grad_out must have one dtype");
  TORCH_CHECK(in_idx_in.scalar_type() == at::kLong && out_idx_in.scalar_type() == at::kLong &&
                  in_idx_in.numel() == out_idx_in.numel(),
              "in_idx and out_idx must be int64 tensors of one length");
  TORCH_CHECK(counts.device().is_cpu() && counts.scalar_type() == at::kLong, "counts must be a CPU int64 tensor");
  const at::Tensor feats = feats_in.contiguous(), grad = grad_in.contiguous();
  const at::Tensor in_idx = in_idx_in.contiguous(), out_idx = out_idx_in.contiguous();
  const int64_t num_offsets = counts.numel(), c_in = feats.size(1), c_out = grad.size(1);
  TORCH_CHECK(identity < num_offsets, "identity offset out of range");
  TORCH_CHECK(identity < 0 || feats.size(0) == grad.size(0), "an identity offset needs as many rows in both");
  const int64_t* count_ptr = counts.data_ptr<int64_t>();
  int64_t total = 0;
  for (int64_t k = 0; k < num_offsets; ++k) total += (k == identity) ? 0 : count_ptr[k];
  TORCH_CHECK(total == in_idx.numel(), "counts do not add up to the number of pairs");
  const auto acc_type = at::toOpMathType(feats.scalar_type());
  at::Tensor gw = at::zeros({num_offsets, c_in, c_out}, feats.options().dtype(acc_type));
  if (identity >= 0) gw[identity].copy_(identity_weight_grad(feats, grad, acc_type));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(), "pcseg_sparse_conv_weight_grad", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* f = feats.data_ptr<scalar_t>();
    const scalar_t* g = grad.data_ptr<scalar_t>();
    acc_t* gw_ptr = gw.data_ptr<acc_t>();
    const int64_t block = 4 * tile_rows(c_in, c_out, sizeof(scalar_t));
    const int64_t wsize = c_in * c_out;
    const int64_t* ins = in_idx.data_ptr<int64_t>();
    const int64_t* outs = out_idx.data_ptr<int64_t>();
    int64_t start = 0;
    for (int64_t k = 0; k < num_offsets; ++k) {
      const int64_t n = (k == identity) ? 0 : count_ptr[k];
      if (n == 0) continue;
      const int64_t num_blocks = (n + block - 1) / block;
      std::vector<scalar_t> partial(static_cast<size_t>(num_blocks * wsize));
      at::parallel_for(0, num_blocks, 1, [&](int64_t b0, int64_t b1) {
        std::vector<scalar_t> a(static_cast<size_t>(block * c_in)), b_rows(static_cast<size_t>(block * c_out));
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t r0 = b * block, rows = std::min(block, n - r0);
          gather_rows(f, ins + start + r0, rows, c_in, a.data());
          gather_rows(g, outs + start + r0, rows, c_out, b_rows.data());
          at::Tensor part = rows_view(partial.data() + b * wsize, c_in, c_out);
          at::mm_out(part, rows_view(a.data(), rows, c_in).t(), rows_view(b_rows.data(), rows, c_out));
        }
      });
      acc_t* dst = gw_ptr + k * wsize;
      for (int64_t b = 0; b < num_blocks; ++b)
        for (int64_t j = 0; j < wsize; ++j) dst[j] += static_cast<acc_t>(partial[b * wsize + j]);
      start += n;
    }
  });
  return gw.scalar_type() == feats.scalar_type() ? gw : gw.to(feats.scalar_type());
}

std::tuple<at::Tensor, at::Tensor> conv_backward_cpu_impl(const at::Tensor& feats_in, const at::Tensor& grad_in,
                                                          const at::Tensor& weight_in, const at::Tensor& in_idx_in,
                                                          const at::Tensor& out_idx_in, const at::Tensor& counts,
                                                          int64_t identity, bool need_feats, bool need_weight) {
  const at::Tensor feats = feats_in.contiguous(), grad = grad_in.contiguous(), weight = weight_in.contiguous();
  const at::Tensor in_idx = in_idx_in.contiguous(), out_idx = out_idx_in.contiguous();
  const int64_t c_in = weight.size(1), c_out = weight.size(2);
  const auto acc_type = at::toOpMathType(feats.scalar_type());
  const auto acc_opts = feats.options().dtype(acc_type);
  const int64_t* count_ptr = counts.data_ptr<int64_t>();
  int64_t total = 0;
  for (int64_t k = 0; k < weight.size(0); ++k) total += (k == identity) ? 0 : count_ptr[k];
  TORCH_CHECK(total == in_idx.numel(), "counts do not add up to the number of pairs");
  at::Tensor gf, gw;
  if (need_feats) {  // the identity offset of a submanifold map: one plain GEMM writes every row
    gf = identity >= 0 ? at::mm(grad, weight[identity].t()).to(acc_type).contiguous()
                       : at::zeros({feats.size(0), c_in}, acc_opts);
  }
  if (need_weight) {
    gw = at::empty({weight.size(0), c_in, c_out}, acc_opts);
    if (identity >= 0) gw[identity].copy_(identity_weight_grad(feats, grad, acc_type));
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(), "pcseg_sparse_conv_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    backward_offsets<scalar_t, acc_t>(feats, grad, weight, in_idx.data_ptr<int64_t>(), out_idx.data_ptr<int64_t>(),
                                      count_ptr, identity,
                                      need_feats ? gf.data_ptr<acc_t>() : nullptr, gw);
  });
  const auto back = [&](const at::Tensor& t) {
    if (!t.defined()) return at::empty({0}, feats.options());
    return t.scalar_type() == feats.scalar_type() ? t : t.to(feats.scalar_type());
  };
  return {back(gf), back(gw)};
}

}  // namespace pcseg
