"""MinkUNet: shapes, every point labeled, voxel plumbing vs an independent voxelization, overfit."""

from __future__ import annotations

import pytest
import torch

from pcseg.errors import PcsegValueError
from pcseg.models import MinkUNet, MinkUNet18, MinkUNet34
from pcseg.sparse import SparseTensor
import model_checks

TINY = dict(layers=(1, 1, 1, 1, 1, 1, 1, 1), width=0.25)

pytestmark = pytest.mark.usefixtures("one_thread")



def ragged_clouds(sizes=(300, 200), seed=0):
    return model_checks.ragged_clouds(sizes, seed, extent=2.0)


def test_logits_for_every_point_and_shared_voxels_agree():
    xyz, feats, _ = ragged_clouds()
    # the first 20 points sit at voxel centres; 20 more points share their voxels
    xyz[:20] = (torch.floor(xyz[:20] / 0.1) + 0.5) * 0.1
    extra = xyz[:20] + 0.01
    xyz = torch.cat([xyz[:300], extra, xyz[300:]])
    feats = torch.cat([feats[:300], torch.rand(20, 4), feats[300:]])
    offsets = torch.tensor([320, 520])
    model = MinkUNet(num_classes=5, in_channels=4, voxel_size=0.1, **TINY).eval()
    with torch.no_grad():
        logits = model.forward_ragged(xyz, feats, offsets)
    assert logits.shape == (520, 5) and torch.isfinite(logits).all()

    # independent voxelization: floor(xyz / size) per cloud, unique rows, mean features
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([320, 200]))
    rows = torch.cat([batch[:, None], torch.floor(xyz / 0.1).long()], 1)
    uniq, inverse = torch.unique(rows, dim=0, return_inverse=True)
    mean = torch.zeros(len(uniq), 4).index_add_(0, inverse, feats)
    mean /= torch.bincount(inverse, minlength=len(uniq))[:, None].float()
    with torch.no_grad():
        per_voxel = model.forward_sparse(SparseTensor(mean, uniq.to(torch.int32))).feats
    torch.testing.assert_close(logits, per_voxel[inverse], rtol=1e-4, atol=1e-5)
    assert torch.equal(inverse[:20], inverse[300:320])
    torch.testing.assert_close(logits[:20], logits[300:320])


def test_presets_and_parameter_counts():
    assert MinkUNet18(20, 4).layers == (2, 2, 2, 2, 2, 2, 2, 2)
    assert MinkUNet34(20, 4).layers == (2, 3, 4, 6, 2, 2, 2, 2)
    full, half = MinkUNet18(20, 4), MinkUNet18(20, 4, width=0.5)
    n_full = sum(p.numel() for p in full.parameters())
    n_half = sum(p.numel() for p in half.parameters())
    assert 0.2 < n_half / n_full < 0.3  # conv weights scale with width^2
    assert full.num_classes == 20 and full.in_channels == 4


@pytest.mark.parametrize("kwargs,match", [
    (dict(layers="50"), "layers"), (dict(layers=(1, 2)), "8 positive"),
    (dict(voxel_size=0), "voxel_size"), (dict(width=-1), "width"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(PcsegValueError, match=match):
        MinkUNet(3, 4, **kwargs)


def test_bad_feats_width():
    xyz, feats, offsets = ragged_clouds()
    with pytest.raises(PcsegValueError, match="in_channels"):
        MinkUNet(3, 5, **TINY).forward_ragged(xyz, feats, offsets)


def test_tiny_overfit():
    torch.manual_seed(0)
    xyz, feats, offsets = ragged_clouds(sizes=(400,), seed=1)
    labels = (xyz[:, 0] > 1.0).long() + (xyz[:, 2] > 1.0).long()  # 3 spatial classes
    model = MinkUNet(3, 4, voxel_size=0.05, **TINY)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(40):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model.forward_ragged(xyz, feats, offsets), labels)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model.forward_ragged(xyz, feats, offsets).argmax(1) == labels).float().mean()
    assert acc > 0.9, float(acc)


def test_matches_spconv_mirror_with_same_weights():
    """The same network built from spconv 2.3.8 layers (benchmarks/bench_sparse_spconv.py)."""
    spconv = pytest.importorskip("spconv.pytorch")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_sparse_spconv import spconv_minkunet

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    pts = torch.cat([torch.rand(1500, 3, generator=g) * 4.0 - 2.0, torch.rand(1500, 1, generator=g)], 1)
    offsets = torch.tensor([900, 1500])
    model = MinkUNet(5, 4, voxel_size=0.1, layers=(1, 2, 1, 1, 1, 1, 1, 1), width=0.5).eval()
    for bn in model.modules():  # non-trivial inference statistics
        if isinstance(bn, torch.nn.BatchNorm1d):
            bn.running_mean.uniform_(-0.1, 0.1)
            bn.running_var.uniform_(0.5, 2.0)
    with torch.no_grad():
        ours = model.forward_ragged(pts[:, :3], pts, offsets)
        theirs = spconv_minkunet(spconv, model)(pts, offsets)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
