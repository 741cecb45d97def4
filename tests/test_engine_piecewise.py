"""Whole-scan inference: block splitting against brute force, every point labelled (stub model
whose answer is known per point, and PointNet++ on the real SemanticKITTI scan)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcseg.errors import PcsegValueError
from pcseg.models.pointnet2 import PointNet2SSG
from pcseg.engine.piecewise import block_regions, predict_scan


pytestmark = pytest.mark.usefixtures("one_thread")


class _SignOfX(torch.nn.Module):
    """Stub model: class 1 where x > 0, else class 0, from each point's own coordinate, so the
    right answer for every point is known; records the size of every cloud it is given."""

    num_classes, in_channels = 2, 1

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(10.0))
        self.cloud_sizes = []

    def forward_ragged(self, xyz, feats, offsets):
        assert not self.training
        assert feats.shape == (xyz.shape[0], 1) and torch.equal(feats[:, 0], xyz[:, 2])
        self.cloud_sizes += torch.diff(offsets, prepend=offsets.new_zeros(1)).tolist()
        return torch.stack([-xyz[:, 0], xyz[:, 0]], dim=1) * self.scale


def test_block_regions_match_brute_force():
    rng = np.random.default_rng(0)
    xy = torch.from_numpy(rng.uniform([-1.0, 2.0], [2.3, 4.1], size=(700, 2)))
    size, stride = 1.0, 0.4
    regions = block_regions(xy, size, stride)
    lo, extent = xy.min(0).values, xy.max(0).values - xy.min(0).values
    # blocks step from the minimum until the last one reaches the maximum: (3.3-1)/0.4 -> 7 steps
    steps = [int(np.ceil((float(e) - size) / stride)) + 1 for e in extent]
    assert steps == [7, 4]
    brute = []
    for i in range(steps[0]):
        for j in range(steps[1]):
            x0, y0 = lo[0] + i * stride, lo[1] + j * stride
            inside = ((xy[:, 0] >= x0) & (xy[:, 0] <= x0 + size)
                      & (xy[:, 1] >= y0) & (xy[:, 1] <= y0 + size)).nonzero()[:, 0]
            if len(inside):
                brute.append(tuple(sorted(inside.tolist())))
    got = sorted(tuple(sorted(r.tolist())) for r in regions)
    covered = torch.zeros(700, dtype=torch.bool)
    for r in regions:
        covered[r] = True
    assert covered.all()
    assert got == sorted(brute)
    assert all(len(set(r)) == len(r) for r in got)


@pytest.mark.parametrize("kwargs", [
    dict(num_points=64),
    dict(num_points=50, votes=3, batch_size=3),
    dict(num_points=40, block_size=1.0, block_stride=0.5),
])
def test_every_point_gets_its_own_answer(kwargs):
    rng = np.random.default_rng(1)
    xyz = rng.uniform(-2, 2, size=(1000, 3)).astype(np.float32)
    model = _SignOfX().train()
    labels, probs = predict_scan(model, xyz, xyz[:, 2:], **kwargs)
    assert labels.shape == (1000,) and probs.shape == (1000, 2)
    assert torch.equal(labels, torch.from_numpy((xyz[:, 0] > 0).astype(np.int64)))
    torch.testing.assert_close(probs.sum(1), torch.ones(1000))
    assert max(model.cloud_sizes) <= kwargs["num_points"]
    assert model.training  # mode restored


def test_nearest_cover_runs_few_points_and_labels_all():
    rng = np.random.default_rng(2)
    xyz = rng.uniform(-2, 2, size=(3000, 3)).astype(np.float32)
    model = _SignOfX()
    labels, probs = predict_scan(model, xyz, xyz[:, 2:], num_points=500, cover="nearest")
    assert model.cloud_sizes == [500]
    truth = torch.from_numpy((xyz[:, 0] > 0).astype(np.int64))
    assert labels.shape == (3000,) and float((labels == truth).float().mean()) > 0.9
    first, again = predict_scan(model, xyz, xyz[:, 2:], num_points=500, cover="nearest", seed=5), \
        predict_scan(model, xyz, xyz[:, 2:], num_points=500, cover="nearest", seed=5)
    assert torch.equal(first[1], again[1])


def test_bad_arguments():
    xyz = np.zeros((10, 3), np.float32)
    with pytest.raises(PcsegValueError, match="feats"):
        predict_scan(_SignOfX(), xyz)
    with pytest.raises(PcsegValueError, match="cover"):
        predict_scan(_SignOfX(), xyz, xyz[:, 2:], cover="some")
    with pytest.raises(PcsegValueError, match="xyz"):
        predict_scan(_SignOfX(), xyz[:, :2], xyz[:, 2:])
    with pytest.raises(PcsegValueError, match="block_stride"):
        predict_scan(_SignOfX(), xyz, xyz[:, 2:], block_size=1.0, block_stride=2.0)


@pytest.mark.parametrize("cover,num_points", [("nearest", 8192), ("all", 32_768)])
def test_pointnet2_labels_every_point_of_the_real_scan(kitti_scan, cover, num_points):
    from pcseg._ext import extension_loaded

    if not extension_loaded():
        pytest.skip("a whole scan takes minutes with the pure-PyTorch reference ops (build pcseg._C)")
    bin_path, _ = kitti_scan
    scan = np.fromfile(bin_path, dtype=np.float32).reshape(-1, 4)
    assert scan.shape[0] == 123_389
    torch.manual_seed(0)
    model = PointNet2SSG(20, in_channels=1, preset="lidar", width=0.25)
    labels, probs = predict_scan(model, scan[:, :3], scan[:, 3:], num_points=num_points,
                                 batch_size=4, cover=cover)
    assert labels.shape == (123_389,) and labels.dtype == torch.int64
    assert int(labels.min()) >= 0 and int(labels.max()) < 20
    assert bool(torch.isfinite(probs).all())
    torch.testing.assert_close(probs.sum(1), torch.ones(123_389), rtol=0, atol=1e-5)
    assert torch.equal(labels, probs.argmax(1))
