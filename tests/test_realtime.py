"""FastVoxelNet (the real-time model): shapes, gradients, per-point detail, batch consistency,
overfit. Its speed is in benchmarks/bench_models.py, not here."""

from __future__ import annotations

import pytest
import torch

from pcseg.engine.builders import build_model
from pcseg.errors import PcsegValueError
from pcseg.models import FastVoxelNet
import model_checks

pytestmark = pytest.mark.usefixtures("one_thread")


def ragged_clouds(sizes=(300, 200), seed=0, extent=4.0):
    return model_checks.ragged_clouds(sizes, seed, extent, low=-extent / 4)


def test_shapes_and_every_parameter_gets_a_gradient():
    xyz, feats, offsets = ragged_clouds()
    model = FastVoxelNet(5, 4, voxel_size=0.2)
    model_checks.assert_every_parameter_gets_a_gradient(model, xyz, feats, offsets, num_classes=5)


def test_points_in_one_voxel_are_told_apart_by_their_offset_in_it():
    xyz, feats, offsets = ragged_clouds(sizes=(400,))
    xyz[1] = (torch.floor(xyz[0] / 0.4) + 0.9) * 0.4  # same 0.4 m voxel, other corner
    xyz[0] = (torch.floor(xyz[0] / 0.4) + 0.1) * 0.4
    feats[:2] = 0.0  # identical features: only the offset in the voxel tells them apart
    model = FastVoxelNet(5, 4).eval()
    for bn in model.modules():
        if isinstance(bn, torch.nn.BatchNorm1d):
            bn.running_var.fill_(0.01)
    with torch.no_grad():
        logits = model.forward_ragged(xyz, feats, offsets)
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)


def test_a_cloud_alone_and_in_a_batch_gets_the_same_logits():
    xyz, feats, _ = ragged_clouds(sizes=(300, 250, 200), seed=4)
    model_checks.three_cloud_logits(FastVoxelNet(4, 4, voxel_size=0.2), xyz, feats)


def test_tiny_overfit():
    torch.manual_seed(0)
    xyz, feats, offsets = ragged_clouds(sizes=(600,), seed=1)
    labels = (xyz[:, 0] > 1.0).long() + (xyz[:, 2] > 1.0).long()
    model = FastVoxelNet(3, 4, voxel_size=0.2)
    losses, acc = model_checks.fit(model, xyz, feats, offsets, labels, steps=40, lr=0.02)
    assert losses[-1] < 0.5 * losses[0] and acc > 0.9, (losses, acc)


def test_built_from_a_config_section_and_bad_arguments():
    model = build_model({"name": "FastVoxelNet", "voxel_size": 0.4, "channels": [8, 16, 16, 16]}, 20, 4)
    assert isinstance(model, FastVoxelNet) and model.channels == (8, 16, 16, 16)
    with pytest.raises(PcsegValueError, match="channels"):
        FastVoxelNet(3, 4, channels=(8, 16))
    with pytest.raises(PcsegValueError, match="voxel_size"):
        FastVoxelNet(3, 4, voxel_size=-1)


def test_eval_mode_folds_batch_norm_exactly():
    """The folded eval path equals Linear -> BatchNorm1d (running stats) -> ReLU done by torch."""
    from pcseg.models.point_layers import PointMLPLayer, RowBatchNorm

    torch.manual_seed(0)
    layer = PointMLPLayer(7, 5).double()
    layer.norm.running_mean.uniform_(-1, 1)
    layer.norm.running_var.uniform_(0.5, 2)
    layer.norm.weight.data.uniform_(0.5, 1.5)
    layer.norm.bias.data.uniform_(-0.5, 0.5)
    f = torch.randn(50, 7, dtype=torch.float64)
    ref = torch.relu(torch.nn.functional.batch_norm(
        f @ layer.linear.weight.T, layer.norm.running_mean, layer.norm.running_var,
        layer.norm.weight, layer.norm.bias, training=False, eps=layer.norm.eps))
    torch.testing.assert_close(layer.eval()(f), ref)
    bn = RowBatchNorm(7).double()
    bn.running_mean.uniform_(-1, 1)
    bn.eval()
    torch.testing.assert_close(bn(f), torch.nn.BatchNorm1d.forward(bn, f))
