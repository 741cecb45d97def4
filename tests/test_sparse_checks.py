"""Bad input to pcseg.sparse gets clear pcseg errors; results are deterministic; spconv parity."""

from __future__ import annotations

import pytest
import torch

from pcseg.errors import PcsegValueError
from pcseg.sparse import (
    SparseConv3d,
    SparseInverseConv3d,
    SparseTensor,
    SubMConv3d,
    sparse_cat,
    voxel_to_point,
)

pytestmark = pytest.mark.usefixtures("one_thread")



def small(seed=0, n=40, channels=3, extent=6):
    g = torch.Generator().manual_seed(seed)
    cells = torch.randperm(2 * extent**3, generator=g)[:n]
    b, rest = cells // extent**3, cells % extent**3
    coords = torch.stack([b, rest // extent**2, (rest // extent) % extent, rest % extent], 1)
    return torch.randn(n, channels, generator=g), coords.to(torch.int32)


def test_duplicate_coordinates_rejected():
    feats, coords = small()
    coords[5] = coords[17]
    with pytest.raises(PcsegValueError, match="duplicate coordinate"):
        SparseTensor(feats, coords)


@pytest.mark.parametrize("mutate,match", [
    (lambda f, c: (f[:0], c[:0]), "empty"),
    (lambda f, c: (f, c.long()), "int32"),
    (lambda f, c: (f, c[:, :3]), r"\(N, 4\)"),
    (lambda f, c: (f[:-1], c), "rows"),
    (lambda f, c: (f.long(), c), "floating"),
    (lambda f, c: (f, torch.cat([c[:, :1] - 5, c[:, 1:]], 1)), "batch"),
])
def test_bad_tensors_rejected(mutate, match):
    feats, coords = small()
    with pytest.raises(PcsegValueError, match=match):
        SparseTensor(*mutate(feats, coords))


def test_channel_mismatch():
    feats, coords = small(channels=3)
    with pytest.raises(PcsegValueError, match="in_channels=4"):
        SubMConv3d(4, 8)(SparseTensor(feats, coords))


def test_inverse_without_matching_downsampling():
    feats, coords = small()
    x = SparseConv3d(3, 3)(SparseTensor(feats, coords))
    with pytest.raises(PcsegValueError, match="matching downsampling"):
        SparseInverseConv3d(3, 3, kernel_size=3, stride=2)(x)


def test_cat_of_different_strides_rejected():
    feats, coords = small()
    x = SparseTensor(feats, coords)
    with pytest.raises(PcsegValueError, match="share voxels"):
        sparse_cat([x, SparseConv3d(3, 3)(x)])


def test_voxel_to_point_bad_inverse():
    feats, coords = small()
    with pytest.raises(PcsegValueError, match="inverse"):
        voxel_to_point(SparseTensor(feats, coords), torch.tensor([0, 99]))


def test_negative_coordinates_allowed():
    feats, coords = small()
    y = SubMConv3d(3, 2)(SparseTensor(feats, coords - torch.tensor([0, 100, 3, 50], dtype=torch.int32)))
    assert y.feats.shape == (40, 2)


def test_forward_and_backward_reproduce_bit_for_bit():
    feats, coords = small(n=150, extent=8)

    def run():
        torch.manual_seed(0)
        net = torch.nn.Sequential(SubMConv3d(3, 8), SparseConv3d(8, 8), SubMConv3d(8, 8),
                                  SparseInverseConv3d(8, 4))
        x = SparseTensor(feats.clone().requires_grad_(True), coords)
        y = net(x)
        (y.feats**2).sum().backward()
        return y.feats.detach(), x.feats.grad, [p.grad for p in net.parameters()]

    a, b = run(), run()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert all(torch.equal(p, q) for p, q in zip(a[2], b[2]))


def _spconv():
    return pytest.importorskip("spconv.pytorch")


def test_submanifold_matches_spconv():
    spconv = _spconv()
    feats, coords = small(n=120, extent=7, channels=4, seed=3)
    ours = SubMConv3d(4, 6, 3)
    theirs = spconv.SubMConv3d(4, 6, 3, bias=True)
    with torch.no_grad():
        theirs.weight.copy_(ours.weight.permute(4, 0, 1, 2, 3))  # -> (Cout, k, k, k, Cin)
        theirs.bias.copy_(ours.bias)
    x = spconv.SparseConvTensor(feats, coords, [7, 7, 7], 2)
    expected = theirs(x).features
    torch.testing.assert_close(ours(SparseTensor(feats, coords)).feats, expected, rtol=1e-4, atol=1e-5)


def test_strided_and_inverse_match_spconv():
    spconv = _spconv()
    feats, coords = small(n=120, extent=8, channels=4, seed=4)
    down, up = SparseConv3d(4, 5, 2, 2), SparseInverseConv3d(5, 3, 2, 2)
    s_down = spconv.SparseConv3d(4, 5, 2, 2, bias=True, indice_key="d")
    s_up = spconv.SparseInverseConv3d(5, 3, 2, indice_key="d", bias=True)
    with torch.no_grad():
        s_down.weight.copy_(down.weight.permute(4, 0, 1, 2, 3))
        s_down.bias.copy_(down.bias)
        s_up.weight.copy_(up.weight.permute(4, 0, 1, 2, 3))
        s_up.bias.copy_(up.bias)
    sx = s_down(spconv.SparseConvTensor(feats, coords, [8, 8, 8], 2))
    mid = down(SparseTensor(feats, coords))
    # match rows by coordinates (the two engines order output voxels differently)
    key = lambda c: ((c[:, 0].long() * 64 + c[:, 1]) * 64 + c[:, 2]) * 64 + c[:, 3]
    order_s, order_o = torch.argsort(key(sx.indices)), torch.argsort(key(mid.coords))
    assert torch.equal(sx.indices[order_s], mid.coords[order_o])
    torch.testing.assert_close(mid.feats[order_o], sx.features[order_s], rtol=1e-4, atol=1e-5)
    out_s = s_up(sx)
    out_o = up(mid)
    torch.testing.assert_close(out_o.feats, out_s.features, rtol=1e-4, atol=1e-5)


def test_batchnorm_on_one_voxel_in_training():
    from pcseg.sparse import SparseBatchNorm

    feats, coords = small(n=1)
    with pytest.raises(PcsegValueError, match="at least 2"):
        SparseBatchNorm(3)(SparseTensor(feats, coords))
