"""Sparse layers against dense torch convolutions on small random grids (float64).

A sparse conv equals the dense conv of the zero-filled grid, read at the sparse output sites;
gradients likewise (the dense input gradient read at the occupied sites).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pcseg.sparse import (
    SparseConv3d,
    SparseInverseConv3d,
    SparseTensor,
    SubMConv3d,
    global_avg_pool,
    global_max_pool,
)

GRID = (7, 6, 8)

pytestmark = pytest.mark.usefixtures("one_thread")



def random_sparse(batch=2, channels=3, density=0.3, seed=0, grid=GRID, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    occ = torch.rand((batch, *grid), generator=g) < density
    coords = torch.nonzero(occ).to(torch.int32)
    coords = coords[torch.randperm(coords.shape[0], generator=g)]  # order must not matter
    feats = torch.randn(coords.shape[0], channels, generator=g, dtype=dtype)
    return feats, coords


def dense_of(feats, coords, batch, grid, pad=0):
    x = feats.new_zeros((batch, feats.shape[1], *(s + 2 * pad for s in grid)))
    c = coords.long()
    x[c[:, 0], :, c[:, 1] + pad, c[:, 2] + pad, c[:, 3] + pad] = feats
    return x


def read_sites(dense, coords, pad=0):
    c = coords.long()
    return dense[c[:, 0], :, c[:, 1] + pad, c[:, 2] + pad, c[:, 3] + pad]


def dense_weight(layer):
    return layer.weight.permute(4, 3, 0, 1, 2)  # (k,k,k,Cin,Cout) -> (Cout,Cin,k,k,k)


@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (3, 2), (5, 1), (1, 1), (2, 1)])
def test_submanifold_matches_dense_conv(kernel_size, dilation):
    feats, coords = random_sparse(seed=kernel_size * 10 + dilation)
    conv = SubMConv3d(3, 4, kernel_size, dilation=dilation).double()
    x = SparseTensor(feats.clone().requires_grad_(True), coords)
    y = conv(x)

    pad = (kernel_size // 2) * dilation
    # weight[i] reads p + (i - r) * d: pad r*d on both sides, read the output at p
    xd = dense_of(feats, coords, 2, GRID, pad=pad).requires_grad_(True)
    wd = dense_weight(conv).detach().clone().requires_grad_(True)
    yd_sites = read_sites(F.conv3d(xd, wd, conv.bias, dilation=dilation), coords)
    torch.testing.assert_close(y.feats, yd_sites)

    g = torch.randn_like(y.feats)
    (y.feats * g).sum().backward()
    (yd_sites * g).sum().backward()
    torch.testing.assert_close(x.feats.grad, read_sites(xd.grad, coords, pad=pad))
    torch.testing.assert_close(conv.weight.grad, wd.grad.permute(2, 3, 4, 1, 0))


def test_fully_occupied_grid_equals_dense_conv():
    grid = (5, 4, 6)
    coords = torch.stack(torch.meshgrid(*[torch.arange(s) for s in (1, *grid)], indexing="ij"),
                         -1).reshape(-1, 4).to(torch.int32)
    feats = torch.randn(coords.shape[0], 2, dtype=torch.float64)
    conv = SubMConv3d(2, 3, 3).double()
    y = conv(SparseTensor(feats, coords))
    yd = F.conv3d(dense_of(feats, coords, 1, grid), dense_weight(conv), conv.bias, padding=1)
    torch.testing.assert_close(y.dense(grid), yd)


@pytest.mark.parametrize("kernel_size,stride", [(2, 2), (3, 2), (2, 3)])
def test_strided_conv_matches_dense_conv(kernel_size, stride):
    feats, coords = random_sparse(seed=3 + kernel_size + stride, density=0.25)
    conv = SparseConv3d(3, 5, kernel_size, stride).double()
    x = SparseTensor(feats.clone().requires_grad_(True), coords)
    y = conv(x)
    assert y.stride == stride

    pad = conv.padding
    slack = kernel_size  # extra zeros on the high side so every sparse output is in range
    xd = feats.new_zeros((2, 3, *(s + pad + slack for s in GRID)))
    c = coords.long()
    xd[c[:, 0], :, c[:, 1] + pad, c[:, 2] + pad, c[:, 3] + pad] = feats
    xd.requires_grad_(True)
    yd = F.conv3d(xd, dense_weight(conv), conv.bias, stride=stride)
    # the sparse output set: every dense output whose receptive field holds an occupied voxel
    occ = F.conv3d((xd.detach().abs().sum(1, keepdim=True) > 0).double(),
                   torch.ones(1, 1, kernel_size, kernel_size, kernel_size, dtype=torch.float64),
                   stride=stride) > 0
    expected_coords = torch.nonzero(occ[:, 0]).to(torch.int32)
    got = sorted(map(tuple, y.coords.tolist()))
    assert got == sorted(map(tuple, expected_coords.tolist()))
    torch.testing.assert_close(y.feats, read_sites(yd, y.coords))

    g = torch.randn_like(y.feats)
    (y.feats * g).sum().backward()
    (read_sites(yd, y.coords) * g).sum().backward()
    torch.testing.assert_close(x.feats.grad, read_sites(xd.grad, coords, pad=pad))


def test_inverse_conv_matches_conv_transpose():
    feats, coords = random_sparse(seed=11, density=0.3, grid=(8, 6, 8))
    down = SparseConv3d(3, 4, 2, 2).double()
    up = SparseInverseConv3d(4, 2, 2, 2).double()
    x = SparseTensor(feats, coords)
    mid = down(x)
    mid_feats = torch.randn_like(mid.feats).requires_grad_(True)
    y = up(mid.replace_feats(mid_feats))
    assert y.stride == 1 and torch.equal(y.coords, coords)

    md = dense_of(mid_feats.detach(), mid.coords, 2, (4, 3, 4)).requires_grad_(True)
    yd = F.conv_transpose3d(md, up.weight.permute(3, 4, 0, 1, 2), up.bias, stride=2)
    torch.testing.assert_close(y.feats, read_sites(yd, coords))
    g = torch.randn_like(y.feats)
    (y.feats * g).sum().backward()
    (read_sites(yd, coords) * g).sum().backward()
    torch.testing.assert_close(mid_feats.grad, read_sites(md.grad, mid.coords))


def test_negative_coordinates_translate():
    feats, coords = random_sparse(seed=5)
    conv = SubMConv3d(3, 2, 3).double()
    shift = torch.tensor([0, -20, -3, -9], dtype=torch.int32)
    a = conv(SparseTensor(feats, coords)).feats
    b = conv(SparseTensor(feats, coords + shift)).feats
    torch.testing.assert_close(a, b)
    down = SparseConv3d(3, 2).double()
    even_shift = torch.tensor([0, -20, -4, -10], dtype=torch.int32)
    ya, yb = down(SparseTensor(feats, coords)), down(SparseTensor(feats, coords + even_shift))
    order_a = torch.argsort(ya.coords[:, 0] * 10**6 + ya.coords[:, 1] * 10**4 + ya.coords[:, 2] * 100 + ya.coords[:, 3])
    yb_c = yb.coords - even_shift // 2
    order_b = torch.argsort(yb_c[:, 0] * 10**6 + yb_c[:, 1] * 10**4 + yb_c[:, 2] * 100 + yb_c[:, 3])
    torch.testing.assert_close(ya.feats[order_a], yb.feats[order_b])


def test_global_pools():
    feats, coords = random_sparse(seed=9)
    x = SparseTensor(feats, coords)
    b = coords[:, 0].long()
    avg, mx = global_avg_pool(x), global_max_pool(x)
    for i in range(2):
        torch.testing.assert_close(avg[i], feats[b == i].mean(0))
        torch.testing.assert_close(mx[i], feats[b == i].amax(0))


def test_voxel_to_point_and_its_gradient():
    from pcseg.sparse import voxel_to_point

    feats = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    inverse = torch.tensor([0, 2, 2, 5, 0, 0, 1, 5])  # voxel 3 and 4 have no points
    out = voxel_to_point(feats, inverse)
    torch.testing.assert_close(out, feats[inverse])
    g = torch.randn(8, 3, dtype=torch.float64)
    (grad,) = torch.autograd.grad((out * g).sum(), feats)
    torch.testing.assert_close(grad, torch.zeros(6, 3, dtype=torch.float64).index_add_(0, inverse, g))


def test_batchnorm_matches_torch_in_training_and_eval():
    from pcseg.sparse import SparseBatchNorm

    feats, coords = random_sparse(channels=5, seed=12)
    ours, ref = SparseBatchNorm(5).double(), torch.nn.BatchNorm1d(5).double()
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2.0)
        ours.bias.uniform_(-1, 1)
    ref.load_state_dict(ours.state_dict())
    for _ in range(2):  # two steps: running statistics and gradients
        a = feats.clone().requires_grad_(True)
        b = feats.clone().requires_grad_(True)
        ya, yb = ours(SparseTensor(a, coords)).feats, ref(b)
        torch.testing.assert_close(ya, yb)
        g = torch.randn_like(ya)
        (ya * g).sum().backward()
        (yb * g).sum().backward()
        torch.testing.assert_close(a.grad, b.grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad)
    for name, buf in ref.named_buffers():
        torch.testing.assert_close(dict(ours.named_buffers())[name], buf)
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(SparseTensor(feats, coords)).feats, ref(feats))
