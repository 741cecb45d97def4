"""Voxelization against hand-computed cases, the torch.unique reference and the real scan."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcseg.errors import PcsegValueError
from pcseg.ops import voxelize, voxelize_batched
from pcseg.ops.voxelize import voxelize_batched_reference, voxelize_reference


def _kitti_points(kitti_scan) -> torch.Tensor:
    bin_path, _ = kitti_scan
    return torch.from_numpy(np.fromfile(bin_path, dtype=np.float32).reshape(-1, 4)[:, :3].copy())


def test_hand_computed_case(device):
    points = torch.tensor([[0.5, 0.5, 0.5], [-0.5, 0.2, 0.1], [0.9, 0.1, 0.9], [2.0, -1.0, 0.0]], device=device)
    coords, inverse, counts = voxelize(points, 1.0)
    assert coords.dtype == torch.int32 and inverse.dtype == torch.int64 and counts.dtype == torch.int64
    assert coords.tolist() == [[-1, 0, 0], [0, 0, 0], [2, -1, 0]]
    assert inverse.tolist() == [1, 0, 1, 2]
    assert counts.tolist() == [1, 2, 1]


def test_origin_and_anisotropic_size(device):
    points = torch.tensor([[1.05, 2.0, 3.0], [1.2, 2.3, 3.9]], dtype=torch.float64, device=device)
    coords, inverse, _ = voxelize(points, [0.1, 0.25, 1.0], origin=[1.0, 2.0, 3.0])
    # float64: (1.2 - 1.0) / 0.1 = 1.9999999999999996 -> 1; y: 0 and 1; z: 0 and 0
    assert coords.tolist() == [[0, 0, 0], [1, 1, 0]]
    expected = torch.floor((points - torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, device=device))
                           / torch.tensor([0.1, 0.25, 1.0], dtype=torch.float64, device=device)).int()
    assert torch.equal(coords[inverse], expected)


def test_duplicates_single_point_and_empty(device):
    points = torch.zeros(5, 3, device=device)
    coords, inverse, counts = voxelize(points, 0.1)
    assert coords.tolist() == [[0, 0, 0]] and counts.tolist() == [5] and inverse.tolist() == [0] * 5
    coords, inverse, counts = voxelize(torch.tensor([[3.0, 4.0, 5.0]], device=device), 2.0)
    assert coords.tolist() == [[1, 2, 2]] and counts.tolist() == [1]
    coords, inverse, counts = voxelize(torch.zeros(0, 3, device=device), 0.1)
    assert coords.shape == (0, 3) and inverse.shape == (0,) and counts.shape == (0,)


def test_batched_keeps_clouds_apart_and_allows_empty_cloud(device):
    points = torch.tensor([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2], [0.1, 0.1, 0.1]], device=device)
    offsets = torch.tensor([2, 2, 3], device=device)  # cloud 1 is empty
    coords, inverse, counts = voxelize_batched(points, offsets, 1.0)
    assert coords.tolist() == [[0, 0, 0, 0], [2, 0, 0, 0]]
    assert inverse.tolist() == [0, 0, 1] and counts.tolist() == [2, 1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_reference_on_random_clouds(device, dtype):
    gen = torch.Generator().manual_seed(0)
    points = (torch.rand(3000, 3, generator=gen, dtype=dtype) * 20 - 10).to(device)
    offsets = torch.tensor([1000, 1000, 2500, 3000], device=device)
    for size in (0.05, 0.7, 3.0):
        got = voxelize_batched(points, offsets, size, origin=[0.3, -0.2, 0.1])
        ref = voxelize_batched_reference(points, offsets, [size] * 3, [0.3, -0.2, 0.1])
        for g, r in zip(got, ref):
            assert torch.equal(g.cpu(), r.cpu())


def test_chunked_kernel_matches_reference(four_threads):
    # 150k points: the CPU kernel works in 4 chunks. Coarse voxels make runs of one voxel cross
    # chunk borders in the sorted order, and cloud borders fall inside chunks.
    gen = torch.Generator().manual_seed(1)
    points = torch.rand(150_000, 3, generator=gen) * torch.tensor([40.0, 30.0, 4.0]) - 15
    offsets = torch.tensor([37_001, 37_001, 90_000, 150_000])
    for size in (0.05, 2.0, 50.0):
        got = voxelize_batched(points, offsets, size)
        ref = voxelize_batched_reference(points, offsets, [size] * 3, [0.0] * 3)
        for g, r in zip(got, ref):
            assert torch.equal(g, r)
    four_chunks = voxelize_batched(points, offsets, 0.05)
    torch.set_num_threads(1)
    one_chunk = voxelize_batched(points, offsets, 0.05)
    assert all(torch.equal(a, b) for a, b in zip(four_chunks, one_chunk))


def test_grid_too_wide_to_pack_matches_reference():
    # Cells spread over 2^27 per axis: 81 key bits, too many for one word with the point index,
    # so the kernel takes its comparison-sort path.
    gen = torch.Generator().manual_seed(2)
    points = (torch.rand(5000, 3, generator=gen, dtype=torch.float64) - 0.5) * 1.3e5
    points[2500:] = points[:2500]  # duplicates
    got = voxelize(points, 1e-3)
    ref = voxelize_reference(points, 1e-3)
    assert got[0].shape[0] == 2500
    for g, r in zip(got, ref):
        assert torch.equal(g, r)


@pytest.mark.parametrize("extents", [(2**10, 2**10, 2**10), (2**16, 2**16, 2**16), (2**17, 2**17, 2**18),
                                     (2**17, 2**18, 2**18)])
def test_long_runs_of_one_cell_with_little_room_for_the_run_length(extents):
    # 1,200 points (11 index bits) over grids of 30, 48, 52 and 53 key bits: the kernel's run-length
    # field shrinks from 8 bits to 5 and to 1 (runs of 300 identical points split into many
    # words), and at 53 + 11 = 64 bits the comparison-sort path takes over.
    gen = torch.Generator().manual_seed(4)
    corners = torch.tensor([[0.0, 0.0, 0.0], [e - 0.5 for e in extents]], dtype=torch.float64)
    points = torch.rand(1200, 3, generator=gen, dtype=torch.float64) * corners[1]
    points[:2] = corners
    points[100:400] = points[100]  # one run of 300 identical points
    points[700:1000] = points[3]   # and another, of a cell seen before
    got = voxelize(points, 1.0)
    ref = voxelize_reference(points, 1.0)
    for g, r in zip(got, ref):
        assert torch.equal(g, r)
    assert sorted(got[2].tolist())[-2:] == [300, 301]  # point 3 and its 300 copies: 301


def test_raw_operator_rejects_nan():
    from pcseg._ext import extension_loaded
    from pcseg.ops._common import use_extension

    points = torch.tensor([[0.0, 1.0, 2.0], [float("inf"), 0.0, 0.0]])
    if not extension_loaded() or not use_extension("voxelize", points):
        pytest.skip("extension not built")
    with pytest.raises(RuntimeError, match="NaN or infinite"):
        torch.ops.pcseg.voxelize(points, torch.tensor([2]), [0.1] * 3, [0.0] * 3)


def test_real_scan_matches_numpy(kitti_scan):
    points = _kitti_points(kitti_scan)
    coords, inverse, counts = voxelize(points, 0.05)
    # Independent check with numpy: unique rows of the floored coordinates (float32 like the op).
    cells = np.floor(points.numpy() / np.float32(0.05)).astype(np.int64)
    unique_rows, np_inverse, np_counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    assert np.array_equal(coords.numpy(), unique_rows)
    assert np.array_equal(inverse.numpy(), np_inverse.reshape(-1))
    assert np.array_equal(counts.numpy(), np_counts)
    ref = voxelize_reference(points, 0.05)
    assert all(torch.equal(a, b) for a, b in zip((coords, inverse, counts), ref))


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: voxelize(torch.zeros(4, 3, dtype=torch.int32), 0.1), "points"),
        (lambda: voxelize(torch.zeros(4, 2), 0.1), "points"),
        (lambda: voxelize(torch.tensor([[0.0, float("nan"), 0.0]]), 0.1), "NaN"),
        (lambda: voxelize(torch.tensor([[0.0, 1.0, 2.0]] * 40 + [[0.0, 0.0, -float("inf")]]), 0.1), "infinite"),
        (lambda: voxelize_batched(torch.tensor([[1.0, 1.0, 1.0], [float("nan")] * 3]), torch.tensor([1, 2]), 0.1), "NaN"),
        (lambda: voxelize(torch.zeros(4, 3), 0.0), "voxel_size"),
        (lambda: voxelize(torch.zeros(4, 3), [0.1, 0.1]), "voxel_size"),
        (lambda: voxelize(torch.zeros(4, 3), ["a", 0.1, 0.1]), "voxel_size"),
        (lambda: voxelize(torch.zeros(4, 3), 0.1, origin=[0.0, None, 0.0]), "origin"),
        (lambda: voxelize_batched(torch.zeros(4, 3), torch.tensor([2, 3]), 0.1), "offsets"),
        (lambda: voxelize_batched(torch.zeros(4, 3), torch.tensor([3, 2, 4]), 0.1), "offsets"),
        (lambda: voxelize(torch.tensor([[0.0, 0, 0], [1e6, 1e6, 1e6]]), 1e-4), "voxel_size"),
    ],
)
def test_bad_input_names_the_argument(call, word):
    with pytest.raises(PcsegValueError, match=word):
        call()


def test_reference_path_rejects_nan(monkeypatch):
    import importlib

    voxelize_module = importlib.import_module("pcseg.ops.voxelize")  # the module, not the function
    monkeypatch.setattr(voxelize_module, "use_extension", lambda *args: False)
    with pytest.raises(PcsegValueError, match="NaN"):
        voxelize(torch.tensor([[0.0, 0.0, 0.0], [float("nan"), 0.0, 0.0]]), 0.1)


def test_opcheck():
    from pcseg._ext import extension_loaded
    from pcseg.ops._common import use_extension

    if not extension_loaded():
        pytest.skip("extension not built")
    points = torch.rand(50, 3) * 4
    use_extension("voxelize", points)  # registers the fake kernels
    for with_batch in (True, False):
        torch.library.opcheck(
            torch.ops.pcseg.voxelize.default, (points, torch.tensor([20, 50]), [0.5] * 3, [0.0] * 3, with_batch)
        )


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu_on_a_large_ragged_batch(dtype):
    # 150k points in three clouds (the middle one empty), a long run of one cell, and two grids
    # (5 cm from the default origin; anisotropic cells from a shifted origin): the CUDA kernel's
    # coords, inverse and counts equal the CPU kernel's exactly, with and without the batch column.
    gen = torch.Generator().manual_seed(5)
    points = (torch.rand(150_000, 3, generator=gen, dtype=dtype) * torch.tensor([80.0, 80.0, 6.0], dtype=dtype)
              - torch.tensor([40.0, 40.0, 3.0], dtype=dtype))
    points[1000:1500] = points[1000]
    offsets = torch.tensor([60_000, 60_000, 150_000])
    for size, origin in ((0.05, None), ((0.2, 0.1, 0.3), (1.0, -2.0, 0.5))):
        on_cpu = voxelize_batched(points, offsets, size, origin)
        on_gpu = voxelize_batched(points.cuda(), offsets.cuda(), size, origin)
        assert all(torch.equal(a, b.cpu()) for a, b in zip(on_cpu, on_gpu))
        on_cpu = voxelize(points, size, origin)
        on_gpu = voxelize(points.cuda(), size, origin)
        assert all(torch.equal(a, b.cpu()) for a, b in zip(on_cpu, on_gpu))


@needs_cuda
def test_cuda_real_scan_matches_numpy(kitti_scan):
    points = _kitti_points(kitti_scan)
    coords, inverse, counts = (t.cpu() for t in voxelize(points.cuda(), 0.05))
    cells = np.floor(points.numpy() / np.float32(0.05)).astype(np.int64)
    unique_rows, np_inverse, np_counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    assert np.array_equal(coords.numpy(), unique_rows)
    assert np.array_equal(inverse.numpy(), np_inverse.reshape(-1))
    assert np.array_equal(counts.numpy(), np_counts)


@needs_cuda
@pytest.mark.parametrize(
    "points, voxel_size, word",
    [
        ([[0.0, 1.0, 2.0]] * 300 + [[float("nan"), 0.0, 0.0]], 0.1, "NaN"),
        ([[0.0, 1.0, 2.0]] * 300 + [[0.0, 0.0, -float("inf")]], 0.1, "infinite"),
        ([[0.0, 0.0, 0.0], [1e6, 1e6, 1e6]], 1e-4, "voxel_size"),  # cells beyond int32
        ([[0.0, 0.0, 0.0], [1e5, 1e5, 1e5]], 1e-4, "voxel_size"),  # 3 x 30 key bits: over 64
    ],
)
def test_cuda_kernel_rejects_what_it_cannot_voxelize(points, voxel_size, word):
    with pytest.raises(PcsegValueError, match=word):
        voxelize(torch.tensor(points, device="cuda"), voxel_size)


def test_extent_over_two_to_the_31_cells(device):
    # Cells from -1.5e9 to 1.5e9 on x (both fit int32, their distance does not): the packed keys
    # take the distance in unsigned 32-bit arithmetic.
    points = torch.tensor([[1.5e9, 0.0, 0.0], [-1.5e9, 0.0, 0.0], [0.5, 0.0, 0.0], [1.5e9, 0.2, 0.0]],
                          dtype=torch.float64, device=device)
    coords, inverse, counts = voxelize(points, 1.0)
    assert coords.cpu().tolist() == [[-1_500_000_000, 0, 0], [0, 0, 0], [1_500_000_000, 0, 0]]
    assert inverse.cpu().tolist() == [2, 0, 1, 2]
    assert counts.cpu().tolist() == [1, 1, 2]


def test_numpy_voxel_size_and_origin_are_accepted():
    points = torch.rand(500, 3, generator=torch.Generator().manual_seed(9)) * 4
    plain = voxelize(points, [0.25, 0.5, 0.25], origin=[0.1, 0.0, -0.2])
    from_numpy = voxelize(points, np.array([0.25, 0.5, 0.25]), origin=np.array([0.1, 0.0, -0.2]))
    assert all(torch.equal(a, b) for a, b in zip(plain, from_numpy))
    assert all(torch.equal(a, b) for a, b in zip(voxelize(points, 0.25), voxelize(points, np.float32(0.25))))
