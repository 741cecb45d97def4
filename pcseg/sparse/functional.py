"""Gather-GEMM-scatter execution of a sparse convolution, with its own backward.

For every kernel offset k with pairs ``(in_idx, out_idx)``:
``out[out_idx] += feats[in_idx] @ weight[k]``. Inside one offset every output row receives at most
one input row, so the offsets are applied one after another and each scatter writes distinct rows:
no floating-point atomics anywhere, forward or backward, hence results reproduce bit for bit on
the same machine (the engine is always in its deterministic mode).

Under autocast (fp16/bf16 on CUDA, bf16 on CPU) the GEMMs run in the autocast dtype and the
partial sums accumulate in float32; the result has the autocast dtype.
"""

from __future__ import annotations

import torch

from pcseg._ext import has_compiled_kernel
from pcseg.sparse.kernel_map import KernelMap


def _use_ext(t: torch.Tensor) -> bool:
    return has_compiled_kernel("sparse_conv_forward", t.device.type)


def _segments(kmap: KernelMap):
    """Yield (offset, start, count) of the stored pairs (the identity offset stores none)."""
    start = 0
    for k, n in enumerate(kmap.counts):
        if k == kmap.identity_offset or n == 0:
            continue
        yield k, start, n
        start += n


def conv_forward_reference(feats, weight, kmap: KernelMap, acc_dtype):
    """out (num_out, C_out) in ``acc_dtype`` from feats (num_in, C_in), weight (K, C_in, C_out)."""
    if kmap.identity_offset is not None:
        out = (feats @ weight[kmap.identity_offset]).to(acc_dtype)
    else:
        out = torch.zeros(kmap.num_out, weight.shape[2], dtype=acc_dtype, device=feats.device)
    for k, s, n in _segments(kmap):
        part = feats.index_select(0, kmap.in_idx[s:s + n]) @ weight[k]
        out.index_add_(0, kmap.out_idx[s:s + n], part.to(acc_dtype))
    return out


def conv_backward_reference(grad_out, feats, weight, kmap: KernelMap, need_feats, need_weight):
    """(grad_feats (num_in, C_in) or None, grad_weight (K, C_in, C_out) or None)."""
    grad_feats = grad_weight = None
    if need_weight:
        grad_weight = torch.zeros_like(weight)
    if need_feats:
        if kmap.identity_offset is not None:
            grad_feats = grad_out @ weight[kmap.identity_offset].t()
        else:
            grad_feats = grad_out.new_zeros(kmap.num_in, weight.shape[1])
    if need_weight and kmap.identity_offset is not None:
        grad_weight[kmap.identity_offset] = feats.t() @ grad_out
    for k, s, n in _segments(kmap):
        i, o = kmap.in_idx[s:s + n], kmap.out_idx[s:s + n]
        g = grad_out.index_select(0, o)
        if need_weight:
            grad_weight[k] = feats.index_select(0, i).t() @ g
        if need_feats:
            grad_feats.index_add_(0, i, g @ weight[k].t())
    return grad_feats, grad_weight


def _counts_tensor(kmap: KernelMap) -> torch.Tensor:
    """(K,) int64 CPU pair counts of the stored pairs (0 for the identity), built once per map."""
    cached = getattr(kmap, "_counts_t", None)
    if cached is None:
        counts = list(kmap.counts)
        if kmap.identity_offset is not None:
            counts[kmap.identity_offset] = 0
        cached = torch.tensor(counts, dtype=torch.int64)
        kmap._counts_t = cached
    return cached


class _SparseConvFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feats, weight, kmap: KernelMap, acc_dtype):
        ctx.kmap = kmap
        ctx.save_for_backward(feats, weight)
        if _use_ext(feats):
            out = torch.ops.pcseg.sparse_conv_forward(
                feats, weight, kmap.in_idx, kmap.out_idx, _counts_tensor(kmap), kmap.num_out,
                -1 if kmap.identity_offset is None else kmap.identity_offset)
            return out
        return conv_forward_reference(feats, weight, kmap, acc_dtype).to(feats.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        feats, weight = ctx.saved_tensors
        kmap = ctx.kmap
        need_feats, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_out = grad_out.contiguous().to(feats.dtype)
        if not _use_ext(feats):
            gf, gw = conv_backward_reference(grad_out, feats, weight, kmap, need_feats, need_weight)
            return gf, gw, None, None
        identity = -1 if kmap.identity_offset is None else kmap.identity_offset
        if has_compiled_kernel("sparse_conv_backward", feats.device.type):
            # one pass over the pairs: each grad_out row is gathered once for both gradients
            gf, gw = torch.ops.pcseg.sparse_conv_backward(
                feats, grad_out, weight, kmap.in_idx, kmap.out_idx, _counts_tensor(kmap), identity,
                need_feats, need_weight)
            return (gf if need_feats else None), (gw if need_weight else None), None, None
        gf = gw = None
        if need_feats:  # the transposed map with the transposed weight, through the same kernel
            gf = torch.ops.pcseg.sparse_conv_forward(
                grad_out, weight.transpose(1, 2).contiguous(), kmap.out_idx, kmap.in_idx,
                _counts_tensor(kmap), kmap.num_in, identity)
        if need_weight and has_compiled_kernel("sparse_conv_weight_grad", feats.device.type):
            # one op: per offset, fixed blocks of gathered rows, one GEMM each, partials summed in order
            gw = torch.ops.pcseg.sparse_conv_weight_grad(
                feats, grad_out, kmap.in_idx, kmap.out_idx, _counts_tensor(kmap), identity)
        elif need_weight:
            gw = torch.zeros_like(weight)
            if kmap.identity_offset is not None:
                gw[kmap.identity_offset] = feats.t() @ grad_out
            for k, s, n in _segments(kmap):
                a = feats.index_select(0, kmap.in_idx[s:s + n])
                gw[k] = a.t() @ grad_out.index_select(0, kmap.out_idx[s:s + n])
        return gf, gw, None, None


def sparse_conv(feats: torch.Tensor, weight: torch.Tensor, kmap: KernelMap) -> torch.Tensor:
    """Apply ``weight`` (K, C_in, C_out) along ``kmap`` to feats (num_in, C_in).

    Returns (num_out, C_out) in the dtype of ``feats`` (the autocast dtype under autocast).
    """
    dev = feats.device.type
    if torch.is_autocast_enabled(dev):
        dtype = torch.get_autocast_dtype(dev)
        feats, weight = feats.to(dtype), weight.to(dtype)
    elif weight.dtype != feats.dtype:
        weight = weight.to(feats.dtype)
    acc = torch.float32 if feats.dtype in (torch.float16, torch.bfloat16) else feats.dtype
    with torch.autocast(dev, enabled=False):
        return _SparseConvFunction.apply(feats.contiguous(), weight.contiguous(), kmap, acc)
