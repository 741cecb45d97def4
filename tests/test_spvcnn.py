"""SPVCNN: shapes, gradients, the point-voxel exchange against pcseg.ops, batch consistency, overfit."""

from __future__ import annotations

import pytest
import torch

from pcseg.engine.builders import build_model
from pcseg.errors import PcsegValueError
from pcseg.models import SPVCNN
from pcseg.ops import devoxelize_trilinear, voxelize_batched
from pcseg.sparse import SparseTensor
import model_checks

TINY = dict(layers=(1, 1, 1, 1, 1, 1, 1, 1), width=0.25)

pytestmark = pytest.mark.usefixtures("one_thread")


def ragged_clouds(sizes=(300, 200), seed=0, extent=2.0):
    return model_checks.ragged_clouds(sizes, seed, extent, low=-extent / 4)


def test_shapes_and_every_parameter_gets_a_gradient():
    xyz, feats, offsets = ragged_clouds()
    model = SPVCNN(5, 4, voxel_size=0.1, **TINY)
    model_checks.assert_every_parameter_gets_a_gradient(model, xyz, feats, offsets, num_classes=5)
    # the point branch ends in the classifier: every point-transform weight moved the loss
    assert all(float(p.grad.abs().sum()) > 0 for p in model.point_transforms.parameters())


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_trilinear_devoxelization_matches_pcseg_ops(stride):
    """The cached (rows, weights) gather equals pcseg.ops.devoxelize_trilinear at every stride."""
    xyz, feats, offsets = ragged_clouds(seed=2)
    model = SPVCNN(5, 4, voxel_size=0.1, **TINY)
    coords, inverse, _ = voxelize_batched(xyz, offsets, 0.1 * stride)
    vfeats = torch.randn(coords.shape[0], 6, dtype=torch.float64)
    x = SparseTensor(vfeats, coords, stride)
    ours = model._devoxelize(x, xyz.double(), coords[inverse, 0].long())
    ref = devoxelize_trilinear(vfeats, coords, xyz.double(), 0.1 * stride, points_offsets=offsets)
    torch.testing.assert_close(ours, ref)


def test_point_at_a_voxel_centre_reads_that_voxel_exactly():
    xyz = torch.tensor([[0.15, 0.25, 0.35], [0.05, 0.05, 0.05], [0.15, 0.35, 0.35]])
    coords, inverse, _ = voxelize_batched(xyz, torch.tensor([3]), 0.1)
    model = SPVCNN(5, 4, voxel_size=0.1, **TINY)
    vfeats = torch.arange(coords.shape[0] * 2, dtype=torch.float64).view(-1, 2)
    out = model._devoxelize(SparseTensor(vfeats, coords), xyz.double(), torch.zeros(3, dtype=torch.int64))
    torch.testing.assert_close(out[0], vfeats[inverse[0]])


def test_points_in_one_voxel_get_different_logits():
    """The full-resolution point branch separates points a MinkUNet voxel would merge."""
    xyz, feats, offsets = ragged_clouds(sizes=(400,))
    xyz[1] = xyz[0] + 0.02  # same 0.2 m voxel (almost surely), different position and feature
    model = SPVCNN(5, 4, voxel_size=0.2, **TINY).eval()
    cells = torch.floor(xyz / 0.2)
    assert torch.equal(cells[0], cells[1])
    with torch.no_grad():
        logits = model.forward_ragged(xyz, feats, offsets)
    assert not torch.allclose(logits[0], logits[1])


def test_a_cloud_alone_and_in_a_batch_gets_the_same_logits():
    xyz, feats, _ = ragged_clouds(sizes=(300, 250, 200), seed=4)
    model_checks.three_cloud_logits(SPVCNN(4, 4, voxel_size=0.1, **TINY), xyz, feats)


def test_tiny_overfit():
    torch.manual_seed(0)
    xyz, feats, offsets = ragged_clouds(sizes=(400,), seed=1)
    labels = (xyz[:, 0] > 0.5).long() + (xyz[:, 2] > 0.5).long()
    model = SPVCNN(3, 4, voxel_size=0.1, dropout=0.0, **TINY)
    losses, acc = model_checks.fit(model, xyz, feats, offsets, labels, steps=30, lr=0.02)
    assert losses[-1] < 0.5 * losses[0] and acc > 0.9, (losses, acc)


def test_built_from_a_config_section_and_bad_arguments():
    model = build_model({"name": "SPVCNN", "voxel_size": 0.2, "layers": [1] * 8, "width": 0.25}, 20, 4)
    assert isinstance(model, SPVCNN) and model.num_classes == 20 and model.in_channels == 4
    with pytest.raises(PcsegValueError, match="SPVCNN: dropout"):
        SPVCNN(3, 4, dropout=1.5)
    with pytest.raises(PcsegValueError, match="SPVCNN: voxel_size"):
        SPVCNN(3, 4, voxel_size=0)
    xyz, feats, offsets = ragged_clouds()
    with pytest.raises(PcsegValueError, match="in_channels"):
        SPVCNN(3, 5, **TINY).forward_ragged(xyz, feats, offsets)
