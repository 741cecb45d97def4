"""Hard voxelization, voxel reduction and devoxelization against independent loops and exact cases."""

from __future__ import annotations

import pytest
import torch

from pcseg.errors import PcsegValueError
from pcseg.ops import devoxelize_nearest, devoxelize_trilinear, hard_voxelize, voxel_reduce, voxelize, voxelize_batched


def test_hard_voxelize_matches_python_loop(device):
    gen = torch.Generator().manual_seed(0)
    points = (torch.rand(400, 3, generator=gen) * 2).to(device)
    features = torch.rand(400, 2, generator=gen).to(device)
    voxels, coords, num_points = hard_voxelize(points, 0.5, max_points_per_voxel=3, max_voxels=20, features=features)
    # independent: walk the points in input order, voxels appear in first-seen order
    table: dict = {}
    for i, cell in enumerate(torch.floor(points.cpu() / 0.5).long().tolist()):
        table.setdefault(tuple(cell), []).append(i)
    expected_cells = list(table)[:20]
    assert coords.cpu().tolist() == [list(c) for c in expected_cells]
    for v, cell in enumerate(expected_cells):
        members = table[cell][:3]
        assert num_points[v].item() == len(members)
        assert torch.equal(voxels[v, : len(members)].cpu(), features.cpu()[members])
        assert bool((voxels[v, len(members) :] == 0).all())


def test_voxel_reduce_mean_max_against_loop(device):
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(50, 3, generator=gen, dtype=torch.float64).to(device)
    inverse = torch.randint(0, 7, (50,), generator=gen).to(device)
    mean = voxel_reduce(feats, inverse, 8, "mean")
    amax = voxel_reduce(feats, inverse, 8, "max")
    for v in range(8):
        rows = feats[inverse == v]
        if rows.shape[0] == 0:
            assert bool((mean[v] == 0).all()) and bool((amax[v] == 0).all())
        else:
            torch.testing.assert_close(mean[v], rows.mean(0))
            torch.testing.assert_close(amax[v], rows.max(0).values)
    with pytest.raises(PcsegValueError, match="mode"):
        voxel_reduce(feats, inverse, 8, "median")


def test_voxel_reduce_mean_gradient_against_hand_computed(device):
    # d mean_v / d feats_n = 1 / count(v) for the voxel v of point n
    gen = torch.Generator().manual_seed(3)
    feats = torch.randn(40, 2, generator=gen, dtype=torch.float64).to(device).requires_grad_(True)
    inverse = torch.randint(0, 5, (40,), generator=gen).to(device)
    weights = torch.randn(6, 2, generator=gen, dtype=torch.float64).to(device)
    (voxel_reduce(feats, inverse, 6, "mean") * weights).sum().backward()
    counts = torch.bincount(inverse.cpu(), minlength=6).double()
    expected = weights.cpu()[inverse.cpu()] / counts[inverse.cpu()].unsqueeze(1)
    torch.testing.assert_close(feats.grad.cpu(), expected)


def test_devoxelize_nearest_roundtrip(device):
    points = torch.tensor([[0.1, 0.1, 0.1], [0.2, 0.3, 0.1], [1.5, 0.2, 0.2]], device=device)
    coords, inverse, counts = voxelize(points, 1.0)
    feats = voxel_reduce(points, inverse, coords.shape[0], "mean")
    back = devoxelize_nearest(feats, inverse)
    torch.testing.assert_close(back[0], back[1])
    torch.testing.assert_close(back[2], points[2])


def test_trilinear_reproduces_linear_fields(device):
    # Every voxel of a full grid holds a linear function of its centre: trilinear interpolation
    # must return that function exactly at points inside the grid.
    size, origin = 0.5, torch.tensor([0.25, -0.5, 1.0], dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(torch.arange(-1, 6), torch.arange(-1, 6), torch.arange(-1, 6), indexing="ij"), -1).reshape(-1, 3)
    centres = origin + (grid.double() + 0.5) * size

    def field(xyz):
        return torch.stack([2 * xyz[:, 0] - xyz[:, 1] + 0.5 * xyz[:, 2], xyz[:, 1] + 3.0], dim=1)

    gen = torch.Generator().manual_seed(2)
    points = origin + 0.5 * size + torch.rand(200, 3, generator=gen, dtype=torch.float64) * (4 * size)
    got = devoxelize_trilinear(field(centres).to(device), grid.to(device), points.to(device), size, origin.tolist())
    torch.testing.assert_close(got.cpu(), field(points))


def test_trilinear_missing_neighbours_and_batches(device):
    coords = torch.tensor([[0, 0, 0, 0], [1, 0, 0, 0]], device=device)
    feats = torch.tensor([[1.0], [5.0]], device=device)
    points = torch.tensor([[0.7, 0.5, 0.5], [0.7, 0.5, 0.5], [9.0, 9.0, 9.0]], device=device)
    offsets = torch.tensor([1, 3], device=device)
    out = devoxelize_trilinear(feats, coords, points, 1.0, points_offsets=offsets)
    # point 0 (cloud 0) only has voxel (0,0,0) among its 8 -> its value; point 1 (cloud 1) has
    # voxel (0,0,0) of cloud 1; point 2 has none -> zeros
    assert out.view(-1).tolist() == pytest.approx([1.0, 5.0, 0.0])


def test_batched_voxelize_then_reduce_keeps_clouds_apart(device):
    points = torch.tensor([[0.1, 0.1, 0.1], [0.1, 0.1, 0.1]], device=device)
    coords, inverse, _ = voxelize_batched(points, torch.tensor([1, 2], device=device), 1.0)
    assert coords.shape[0] == 2 and inverse.tolist() == [0, 1]
