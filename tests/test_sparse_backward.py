"""The fused CPU backward op of sparse convolution (``pcseg::sparse_conv_backward``).

References are independent of the op: autograd through the pure-PyTorch forward
(``index_select`` / ``index_add_``) in float64, and numerical gradients (``gradcheck``).
"""

from __future__ import annotations

import pytest
import torch

from pcseg import _ext
from pcseg.sparse.functional import _counts_tensor, conv_forward_reference, sparse_conv
from pcseg.sparse.kernel_map import downsample_coords, downsample_map, submanifold_map
from pcseg.sparse.tensor import CoordIndex

needs_op = pytest.mark.skipif(
    not (_ext.extension_loaded() and hasattr(torch.ops.pcseg, "sparse_conv_backward")),
    reason="pcseg._C with the fused sparse-conv backward is not built")

pytestmark = pytest.mark.usefixtures("one_thread")


def cloud(n, extent, seed, batches=2):
    """(n, 4) int32 unique (batch, x, y, z) rows drawn from a box of ``extent`` voxels."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.randperm(batches * extent**3, generator=g)[:n]
    b, rest = cells // extent**3, cells % extent**3
    xyz = torch.stack([rest // extent**2, (rest // extent) % extent, rest % extent], 1) - extent // 2
    return torch.cat([b[:, None], xyz], 1).to(torch.int32)


def maps(n=3000, extent=20, seed=10):
    """A submanifold map (identity offset), a stride-2 kernel-3 map and its transpose."""
    coords = cloud(n, extent, seed)
    index = CoordIndex(coords)
    down = downsample_map(index, downsample_coords(coords, 3, 2, 1, 1), 3, 2, 1, 1, use_ext=True)
    return {"subm": submanifold_map(index, 3, 1, use_ext=True), "down": down, "up": down.transposed()}


def reference_grads(feats, weight, grad, kmap):
    """(grad_feats, grad_weight) by autograd through the float64 pure-PyTorch forward."""
    f = feats.double().requires_grad_(True)
    w = weight.double().requires_grad_(True)
    out = conv_forward_reference(f, w, kmap, torch.float64)
    return torch.autograd.grad(out, (f, w), grad.double())


def run_op(feats, weight, grad, kmap, need_feats=True, need_weight=True):
    identity = -1 if kmap.identity_offset is None else kmap.identity_offset
    return torch.ops.pcseg.sparse_conv_backward(feats, grad, weight, kmap.in_idx, kmap.out_idx,
                                                _counts_tensor(kmap), identity, need_feats, need_weight)


def data(kmap, c_in, c_out, seed):
    """float64 feats (num_in, c_in), weight (K, c_in, c_out) and grad_out (num_out, c_out)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(kmap.num_in, c_in, generator=g, dtype=torch.float64),
            torch.randn(len(kmap.counts), c_in, c_out, generator=g, dtype=torch.float64),
            torch.randn(kmap.num_out, c_out, generator=g, dtype=torch.float64))


@needs_op
@pytest.mark.parametrize("which", ["subm", "down", "up"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_fused_backward_matches_autograd_of_reference(which, dtype):
    kmap = maps()[which]
    feats, weight, grad = data(kmap, 24, 40, seed=1)
    exp_f, exp_w = reference_grads(feats, weight, grad, kmap)
    gf, gw = run_op(feats.to(dtype), weight.to(dtype), grad.to(dtype), kmap)
    assert gf.dtype == dtype and gw.dtype == dtype
    assert gf.shape == feats.shape and gw.shape == weight.shape
    tol = {torch.float64: 1e-12, torch.float32: 1e-4, torch.bfloat16: 0.5}[dtype]
    torch.testing.assert_close(gf.double(), exp_f, rtol=tol, atol=tol * 10)
    torch.testing.assert_close(gw.double(), exp_w, rtol=tol, atol=tol * 40)


@needs_op
def test_fused_backward_computes_only_what_is_asked():
    kmap = maps()["subm"]
    feats, weight, grad = data(kmap, 8, 12, seed=2)
    both = run_op(feats, weight, grad, kmap)
    only_f = run_op(feats, weight, grad, kmap, need_weight=False)
    only_w = run_op(feats, weight, grad, kmap, need_feats=False)
    assert only_f[1].numel() == 0 and only_w[0].numel() == 0
    assert torch.equal(only_f[0], both[0]) and torch.equal(only_w[1], both[1])


@needs_op
def test_fused_backward_same_bits_with_one_and_two_threads_over_many_tiles():
    # ~7k pairs per offset at 64 -> 64 channels: over 8 tiles per offset, so all 8 lanes are used
    kmap = maps(n=30000, extent=40, seed=3)["subm"]
    assert max(kmap.counts[:kmap.identity_offset]) > 8 * 512
    feats, weight, grad = (t.float() for t in data(kmap, 64, 64, seed=4))
    results = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(run_op(feats, weight, grad, kmap))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    exp_f, exp_w = reference_grads(feats, weight, grad, kmap)
    torch.testing.assert_close(results[0][0].double(), exp_f, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(results[0][1].double(), exp_w, rtol=1e-4, atol=1e-2)


@needs_op
@pytest.mark.parametrize("which", ["subm", "down", "up"])
def test_sparse_conv_gradcheck_float64(which):
    kmap = maps(n=60, extent=5, seed=5)[which]
    feats, weight, _ = data(kmap, 2, 3, seed=6)
    feats.requires_grad_(True)
    weight.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f, w: sparse_conv(f, w, kmap), (feats, weight))


@needs_op
def test_fused_backward_rejects_bad_counts():
    kmap = maps()["down"]
    feats, weight, grad = (t.float() for t in data(kmap, 4, 5, seed=7))
    bad = _counts_tensor(kmap).clone()
    bad[0] += 1
    with pytest.raises(RuntimeError, match="counts"):
        torch.ops.pcseg.sparse_conv_backward(feats, grad, weight, kmap.in_idx, kmap.out_idx, bad, -1, True, True)


@needs_op
def test_fused_backward_takes_inputs_that_require_grad_on_two_threads():
    # saved activations require grad in a training step; the op's worker threads must not hand
    # them to autograd-checked out= GEMMs (a training step once failed this way)
    kmap = maps(n=30000, extent=40, seed=3)["subm"]
    feats, weight, grad = (t.float() for t in data(kmap, 16, 16, seed=5))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        got = run_op(feats.clone().requires_grad_(), weight.clone().requires_grad_(), grad, kmap)
    finally:
        torch.set_num_threads(before)
    exp_f, exp_w = reference_grads(feats, weight, grad, kmap)
    torch.testing.assert_close(got[0].double(), exp_f, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(got[1].double(), exp_w, rtol=1e-4, atol=1e-2)
