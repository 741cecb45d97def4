"""Compiled kernels (C++ CPU, CUDA) against the pure-PyTorch references of pcseg.sparse."""

from __future__ import annotations

import pytest
import torch

from pcseg import _ext
from pcseg.sparse import SparseConv3d, SparseInverseConv3d, SparseTensor, SubMConv3d
from pcseg.sparse.functional import _counts_tensor, conv_forward_reference
from pcseg.sparse.kernel_map import downsample_coords, downsample_map, pooling_map, submanifold_map
from pcseg.sparse.tensor import CoordIndex

needs_ext = pytest.mark.skipif(
    not (_ext.extension_loaded() and hasattr(torch.ops.pcseg, "sparse_kernel_map")),
    reason="pcseg._C with the sparse kernels is not built")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


pytestmark = pytest.mark.usefixtures("one_thread")


def cloud(n=400, extent=12, seed=0, batches=2):
    g = torch.Generator().manual_seed(seed)
    cells = torch.randperm(batches * extent**3, generator=g)[:n]
    b, rest = cells // extent**3, cells % extent**3
    xyz = torch.stack([rest // extent**2, (rest // extent) % extent, rest % extent], 1) - extent // 2
    return torch.cat([b[:, None], xyz], 1).to(torch.int32)


def pair_sets(kmap):
    """Per offset, the set of (in, out) pairs (the order inside an offset is free)."""
    out, start = [], 0
    for k, n in enumerate(kmap.counts):
        if k == kmap.identity_offset:
            out.append("identity")
            continue
        out.append(set(zip(kmap.in_idx[start:start + n].tolist(), kmap.out_idx[start:start + n].tolist())))
        start += n
    return out


@needs_ext
@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (3, 2), (2, 1), (5, 1)])
def test_submanifold_map_matches_reference(kernel_size, dilation):
    index = CoordIndex(cloud())
    ext = submanifold_map(index, kernel_size, dilation, use_ext=True)
    ref = submanifold_map(index, kernel_size, dilation, use_ext=False)
    assert ext.counts == ref.counts and pair_sets(ext) == pair_sets(ref)


@needs_ext
@pytest.mark.parametrize("kernel_size,stride,padding", [(2, 2, 0), (3, 2, 1), (2, 3, 0)])
def test_downsample_map_matches_reference(kernel_size, stride, padding):
    coords = cloud(seed=1)
    index = CoordIndex(coords)
    out = downsample_coords(coords, kernel_size, stride, padding, 1)
    ext = downsample_map(index, out, kernel_size, stride, padding, 1, use_ext=True)
    ref = downsample_map(index, out, kernel_size, stride, padding, 1, use_ext=False)
    assert ext.counts == ref.counts and pair_sets(ext) == pair_sets(ref)


@needs_ext
def test_kernel_map_op_rejects_duplicate_keys():
    keys = torch.tensor([5, 9, 5])
    with pytest.raises(RuntimeError, match="duplicate"):
        torch.ops.pcseg.sparse_kernel_map(keys, keys, torch.tensor([0]), -1)


@needs_ext
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_conv_forward_op_matches_reference(dtype):
    index = CoordIndex(cloud(seed=2))
    kmap = submanifold_map(index, 3, 1, use_ext=True)
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(kmap.num_in, 5, generator=g, dtype=torch.float64)
    weight = torch.randn(27, 5, 7, generator=g, dtype=torch.float64)
    expected = conv_forward_reference(feats, weight, kmap, torch.float64)
    got = torch.ops.pcseg.sparse_conv_forward(feats.to(dtype), weight.to(dtype), kmap.in_idx, kmap.out_idx,
                                              _counts_tensor(kmap), kmap.num_out, kmap.identity_offset)
    assert got.dtype == dtype
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 1e-1}[dtype]
    torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol * 10)


def _tiny_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(SubMConv3d(3, 6), SparseConv3d(6, 8), SubMConv3d(8, 8, dilation=2),
                               SparseInverseConv3d(8, 4)).double()


@needs_ext
def test_extension_and_reference_agree_forward_and_backward(monkeypatch):
    coords = cloud(seed=3)
    feats = torch.randn(coords.shape[0], 3, dtype=torch.float64)

    def run():
        net = _tiny_net()
        x = SparseTensor(feats.clone().requires_grad_(True), coords)
        y = net(x)
        (y.feats * torch.linspace(-1, 1, y.feats.numel(), dtype=torch.float64).view_as(y.feats)).sum().backward()
        return [y.feats.detach(), x.feats.grad] + [p.grad for p in net.parameters()]

    with_ext = run()
    monkeypatch.setenv("PCSEG_DISABLE_EXTENSION", "1")
    reference = run()
    for a, b in zip(with_ext, reference):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@needs_cuda
def test_cpu_cuda_parity_forward_and_backward():
    coords = cloud(seed=4, n=800)
    feats = torch.randn(coords.shape[0], 3, dtype=torch.float64)
    results = []
    for device in ("cpu", "cuda"):
        net = _tiny_net().to(device)
        x = SparseTensor(feats.to(device).requires_grad_(True), coords.to(device))
        y = net(x)
        (y.feats**2).sum().backward()
        results.append([y.feats.detach().cpu(), x.feats.grad.cpu()] + [p.grad.cpu() for p in net.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast(dtype):
    coords = cloud(seed=5, n=800).cuda()
    feats = torch.randn(coords.shape[0], 16, device="cuda")
    conv = SubMConv3d(16, 32).cuda()
    expected = conv(SparseTensor(feats, coords)).feats
    with torch.autocast("cuda", dtype=dtype):
        got = conv(SparseTensor(feats, coords)).feats
    assert got.dtype == dtype
    torch.testing.assert_close(got.float(), expected, rtol=3e-2, atol=3e-2)


@needs_cuda
def test_cuda_runs_reproduce_bit_for_bit():
    coords = cloud(seed=6, n=2000, extent=20).cuda()
    feats = torch.randn(coords.shape[0], 3, device="cuda", dtype=torch.float64)
    outs = []
    for _ in range(2):
        net = _tiny_net().cuda()
        x = SparseTensor(feats.clone().requires_grad_(True), coords)
        y = net(x)
        (y.feats**2).sum().backward()
        outs.append((y.feats.detach(), x.feats.grad, [p.grad for p in net.parameters()]))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    assert all(torch.equal(a, b) for a, b in zip(outs[0][2], outs[1][2]))


@pytest.mark.parametrize("stride", [2, 3])
def test_pooling_map_matches_hash_search(stride):
    coords = cloud(seed=7)
    out, kmap = pooling_map(coords, stride)
    assert torch.equal(out, downsample_coords(coords, stride, stride, 0, 1))
    ref = downsample_map(CoordIndex(coords), out, stride, stride, 0, 1, use_ext=False)
    assert kmap.counts == ref.counts and pair_sets(kmap) == pair_sets(ref)


def test_cpu_autocast_bfloat16():
    coords = cloud(seed=8)
    feats = torch.randn(coords.shape[0], 8)
    conv = SubMConv3d(8, 16)
    expected = conv(SparseTensor(feats, coords)).feats
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = conv(SparseTensor(feats, coords)).feats
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected, rtol=5e-2, atol=5e-2)


@needs_ext
def test_hash_and_merge_join_kernel_maps_agree():
    """The CPU has two map kernels: hash probes (as on CUDA) and a sorted merge join."""
    coords = cloud(seed=9, n=600)
    index = CoordIndex(coords)
    from pcseg.sparse.kernel_map import kernel_offsets

    deltas = (kernel_offsets(3, 2, 1, "cpu") * index.key_strides).sum(1)
    hashed = torch.ops.pcseg.sparse_kernel_map(index.keys, index.keys, deltas, 13)
    merged = torch.ops.pcseg.sparse_kernel_map_sorted(index.sorted_keys, index.order, index.sorted_keys,
                                                      index.order, deltas, 13)
    assert torch.equal(hashed[2], merged[2])
    for kmaps in zip(torch.split(hashed[0], hashed[2].tolist()), torch.split(hashed[1], hashed[2].tolist()),
                     torch.split(merged[0], merged[2].tolist()), torch.split(merged[1], merged[2].tolist())):
        assert set(zip(kmaps[0].tolist(), kmaps[1].tolist())) == set(zip(kmaps[2].tolist(), kmaps[3].tolist()))


def _weight_grad_reference(feats, grad, kmap):
    """Per offset feats[in]^T @ grad[out] in float64, written out from the map's pairs."""
    out = torch.zeros(len(kmap.counts), feats.shape[1], grad.shape[1], dtype=torch.float64)
    f, g, start = feats.double(), grad.double(), 0
    for k, n in enumerate(kmap.counts):
        if k == kmap.identity_offset:
            out[k] = f.t() @ g
            continue
        i, o = kmap.in_idx[start:start + n], kmap.out_idx[start:start + n]
        out[k] = f[i].t() @ g[o]
        start += n
    return out


def _maps_for_kernel_tests():
    """A submanifold map (identity offset) and a stride-2 map, large enough for several tiles."""
    coords = cloud(seed=10, n=3000, extent=20)
    index = CoordIndex(coords)
    sub = submanifold_map(index, 3, 1, use_ext=True)
    out = downsample_coords(coords, 3, 2, 1, 1)
    down = downsample_map(index, out, 3, 2, 1, 1, use_ext=True)
    assert max(sub.counts) > 1000 and max(down.counts) > 300  # several 64+-row tiles per offset
    return {"subm": sub, "down": down}


@needs_ext
@pytest.mark.parametrize("which", ["subm", "down"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_tiled_forward_and_weight_grad_ops_match_reference(which, dtype):
    kmap = _maps_for_kernel_tests()[which]
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(kmap.num_in, 24, generator=g, dtype=torch.float64)
    weight = torch.randn(27, 24, 40, generator=g, dtype=torch.float64)
    grad = torch.randn(kmap.num_out, 40, generator=g, dtype=torch.float64)
    identity = -1 if kmap.identity_offset is None else kmap.identity_offset
    tol = {torch.float64: 1e-12, torch.float32: 1e-4, torch.bfloat16: 0.5}[dtype]
    got = torch.ops.pcseg.sparse_conv_forward(feats.to(dtype), weight.to(dtype), kmap.in_idx, kmap.out_idx,
                                              _counts_tensor(kmap), kmap.num_out, identity)
    assert got.dtype == dtype
    expected = conv_forward_reference(feats, weight, kmap, torch.float64)
    torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol)
    gw = torch.ops.pcseg.sparse_conv_weight_grad(feats.to(dtype), grad.to(dtype), kmap.in_idx, kmap.out_idx,
                                                 _counts_tensor(kmap), identity)
    assert gw.dtype == dtype and gw.shape == weight.shape
    torch.testing.assert_close(gw.double(), _weight_grad_reference(feats, grad, kmap),
                               rtol=tol, atol=tol * 40)


@needs_ext
def test_tiled_ops_give_the_same_bits_with_one_and_two_threads():
    kmap = _maps_for_kernel_tests()["subm"]
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(kmap.num_in, 32, generator=g)
    weight = torch.randn(27, 32, 48, generator=g)
    grad = torch.randn(kmap.num_out, 48, generator=g)
    args = (kmap.in_idx, kmap.out_idx, _counts_tensor(kmap))
    results = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append((torch.ops.pcseg.sparse_conv_forward(feats, weight, *args, kmap.num_out, kmap.identity_offset),
                            torch.ops.pcseg.sparse_conv_weight_grad(feats, grad, *args, kmap.identity_offset)))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


@needs_ext
def test_weight_grad_op_rejects_bad_counts():
    kmap = _maps_for_kernel_tests()["down"]
    feats, grad = torch.randn(kmap.num_in, 4), torch.randn(kmap.num_out, 5)
    bad = _counts_tensor(kmap).clone()
    bad[0] += 1
    with pytest.raises(RuntimeError, match="counts"):
        torch.ops.pcseg.sparse_conv_weight_grad(feats, grad, kmap.in_idx, kmap.out_idx, bad, -1)
