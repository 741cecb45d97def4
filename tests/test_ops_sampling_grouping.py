"""Furthest point sampling, grouping and interpolation: references, hand cases, gradients, opcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcseg.errors import PcsegValueError
from pcseg.ops import (
    ball_query,
    furthest_point_sample,
    furthest_point_sample_ragged,
    group,
    interpolate_features,
    three_interpolate,
    three_nn,
    three_nn_weights,
)
from pcseg.ops.grouping import group_reference, three_interpolate_reference
from pcseg.ops.sampling import furthest_point_sample_reference


def _numpy_fps(points: np.ndarray, n: int, start: int) -> list[int]:
    """Independent furthest point sampling in numpy (same float32 arithmetic order)."""
    chosen = [start]
    min_dist = np.full(points.shape[0], np.inf, dtype=points.dtype)
    for _ in range(n - 1):
        diff = points - points[chosen[-1]]
        d = diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1] + diff[:, 2] * diff[:, 2]
        min_dist = np.minimum(min_dist, d)
        chosen.append(int(np.argmax(min_dist)))
    return chosen


def test_fps_hand_computed(device):
    points = torch.tensor([[0.0, 0, 0], [1, 0, 0], [5, 0, 0], [2, 0, 0], [5, 0, 0]], device=device)
    # from 0: furthest is 5 (index 2, tie with 4 -> smaller index), then 3 (distance 2 from both ends...)
    assert furthest_point_sample(points, 3).tolist() == [0, 2, 3]
    assert furthest_point_sample(points, 1, start=4).tolist() == [4]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fps_matches_numpy_and_reference(device, dtype):
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(700, 3, generator=gen, dtype=dtype) * 10
    got = furthest_point_sample(points.to(device), 64, start=5).cpu()
    assert got.tolist() == _numpy_fps(points.numpy(), 64, 5)
    ref = furthest_point_sample_reference(points, torch.tensor([700]), torch.tensor([64]), 5)
    assert torch.equal(got, ref)


def test_fps_batched_and_ragged(device):
    gen = torch.Generator().manual_seed(1)
    points = (torch.rand(3, 200, 3, generator=gen) * 3).to(device)
    idx = furthest_point_sample(points, 20)
    assert idx.shape == (3, 20)
    for b in range(3):
        assert torch.equal(idx[b], furthest_point_sample(points[b], 20))
    flat = points.reshape(-1, 3)
    offsets = torch.tensor([200, 400, 600], device=device)
    ragged, new_offsets = furthest_point_sample_ragged(flat, offsets, torch.tensor([5, 20, 1]))
    assert new_offsets.tolist() == [5, 25, 26]
    assert torch.equal(ragged[:5], idx[0, :5])
    assert torch.equal(ragged[5:25], idx[1] + 200)
    assert ragged[25:].tolist() == [400]


def test_fps_real_scan(kitti_scan):
    bin_path, _ = kitti_scan
    points = np.fromfile(bin_path, dtype=np.float32).reshape(-1, 4)[:4096, :3].copy()
    got = furthest_point_sample(torch.from_numpy(points), 256)
    assert got.tolist() == _numpy_fps(points, 256, 0)


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: furthest_point_sample(torch.rand(10, 3), 11), "n"),
        (lambda: furthest_point_sample(torch.rand(10, 3), 0), "n"),
        (lambda: furthest_point_sample(torch.rand(10, 3), 2, start=10), "start"),
        (lambda: furthest_point_sample(torch.rand(10, 2), 2), "points"),
        (lambda: furthest_point_sample_ragged(torch.rand(10, 3), torch.tensor([4, 9]), 2), "offsets"),
        (lambda: furthest_point_sample_ragged(torch.rand(10, 3), torch.tensor([4, 4, 10]), 2), "empty cloud"),
        (lambda: furthest_point_sample_ragged(torch.rand(10, 3), torch.tensor([4, 10]), [5, 2]), "n"),
        (lambda: group(torch.rand(5, 2), torch.tensor([[0, 5]])), "idx"),
        (lambda: group(torch.rand(5, 2), torch.tensor([[0.0, 1.0]])), "idx"),
        (lambda: three_interpolate(torch.rand(5, 2), torch.tensor([[0, 1, 2]]), torch.rand(1, 2)), "weight"),
    ],
)
def test_bad_input_names_the_argument(call, word):
    with pytest.raises(PcsegValueError, match=word):
        call()


def test_group_hand_computed_with_padding(device):
    features = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]], device=device)
    idx = torch.tensor([[2, 0, -1]], device=device)
    assert group(features, idx).tolist() == [[[3.0, 30.0], [1.0, 10.0], [0.0, 0.0]]]
    # channels-first batched layout, as PointNet++ code writes it
    out = group(features.T.unsqueeze(0), idx.unsqueeze(0), channels_first=True)
    assert out.shape == (1, 2, 1, 3) and out[0, :, 0, 0].tolist() == [3.0, 30.0]


def test_group_gradcheck_and_reference(device):
    gen = torch.Generator().manual_seed(2)
    features = torch.rand(2, 30, 4, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    idx = torch.randint(-1, 30, (2, 7, 5), generator=gen).to(device)
    assert torch.equal(group(features, idx), group_reference(features, idx))
    assert torch.autograd.gradcheck(lambda f: group(f, idx), (features,))
    # duplicate indices accumulate their gradients
    f = torch.zeros(3, 1, dtype=torch.float64, device=device, requires_grad=True)
    group(f, torch.tensor([[1, 1, 1, -1]], device=device)).sum().backward()
    assert f.grad.view(-1).tolist() == [0.0, 3.0, 0.0]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_group_takes_the_dtypes_autocast_feeds_it(device, dtype):
    """Half and bfloat16 features (what autocast gives PointNet++ layers) on every device: the
    gather is exact, and the backward's sums of small integers are exact in these types too
    (the CUDA kernel accumulates them in float32)."""
    gen = torch.Generator().manual_seed(4)
    features = torch.randint(-8, 8, (2, 30, 4), generator=gen).to(dtype).to(device).requires_grad_()
    idx = torch.randint(-1, 30, (2, 40, 6), generator=gen).to(device)
    out = group(features, idx)
    assert out.dtype == dtype
    assert torch.equal(out.double(), group_reference(features.detach().double(), idx))
    weights = torch.randint(1, 4, out.shape, generator=gen).to(dtype).to(device)
    (out * weights).sum().backward()
    expected = torch.zeros(2, 30, 4, dtype=torch.float64, device=device)
    flat_idx, flat_w = idx.reshape(2, -1), weights.double().reshape(2, -1, 4)
    for b in range(2):
        keep = flat_idx[b] >= 0
        expected[b].index_add_(0, flat_idx[b][keep], flat_w[b][keep])
    assert features.grad.dtype == dtype
    assert torch.equal(features.grad.double(), expected)


def test_three_interpolate_gradcheck_and_reference(device):
    gen = torch.Generator().manual_seed(3)
    known = torch.rand(40, 3, generator=gen, dtype=torch.float64).to(device)
    unknown = torch.rand(25, 3, generator=gen, dtype=torch.float64).to(device)
    idx, dist = three_nn(known, unknown)
    weight = three_nn_weights(dist).requires_grad_()
    features = torch.rand(40, 3, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    out = three_interpolate(features, idx, weight)
    ref = three_interpolate_reference(features.unsqueeze(0), idx.unsqueeze(0), weight.unsqueeze(0))[0]
    torch.testing.assert_close(out, ref)
    # weights sum to one: interpolating a constant gives the constant
    const = torch.full((40, 2), 7.0, dtype=torch.float64, device=device)
    torch.testing.assert_close(interpolate_features(known, const, unknown), torch.full((25, 2), 7.0, dtype=torch.float64, device=device))
    assert torch.autograd.gradcheck(lambda f, w: three_interpolate(f, idx, w), (features, weight))


def test_ball_query_then_group_pointnet_style(device):
    gen = torch.Generator().manual_seed(4)
    xyz = (torch.rand(2, 256, 3, generator=gen)).to(device)
    centers = furthest_point_sample(xyz, 32)
    new_xyz = torch.gather(xyz, 1, centers.unsqueeze(-1).expand(-1, -1, 3))
    idx = ball_query(xyz, new_xyz, 0.3, 16)
    assert bool((idx[:, :, 0] == centers).all())  # every centre finds itself first
    grouped = group(xyz, idx) - new_xyz.unsqueeze(2)
    valid = idx >= 0
    assert bool((grouped.norm(dim=-1)[valid] <= 0.3 + 1e-6).all())


def test_opcheck():
    from pcseg._ext import extension_loaded
    from pcseg.ops._common import use_extension

    if not extension_loaded():
        pytest.skip("extension not built")
    features = torch.rand(2, 20, 3, dtype=torch.float64, requires_grad=True)
    idx = torch.randint(-1, 20, (2, 6, 3))
    weight = torch.rand(2, 6, 3, dtype=torch.float64, requires_grad=True)
    if not use_extension("group", features):
        pytest.skip("this build lacks group")
    torch.library.opcheck(torch.ops.pcseg.group.default, (features, idx))
    torch.library.opcheck(torch.ops.pcseg.three_interpolate.default, (features, idx, weight))
    points = torch.rand(50, 3)
    torch.library.opcheck(torch.ops.pcseg.furthest_point_sample.default, (points, torch.tensor([20, 50]), torch.tensor([5, 9]), 0))
