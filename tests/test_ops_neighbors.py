"""Ball query and kNN against the brute-force references, hand-computed cases and scipy's cKDTree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcseg.errors import PcsegValueError
from pcseg.ops import ball_query, knn, three_nn
from pcseg.ops.neighbors import ball_query_reference, knn_reference


def _kitti_points(kitti_scan) -> torch.Tensor:
    bin_path, _ = kitti_scan
    return torch.from_numpy(np.fromfile(bin_path, dtype=np.float32).reshape(-1, 4)[:, :3].copy())


def _random_batch(seed, dtype=torch.float32, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    points = (torch.rand(1500, 3, generator=gen, dtype=dtype) * 6).to(device)
    queries = (torch.rand(300, 3, generator=gen, dtype=dtype) * 6).to(device)
    return points, queries, torch.tensor([400, 400, 1500], device=device), torch.tensor([100, 150, 300], device=device)


def test_ball_query_hand_computed(device):
    points = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0.5, 0, 0], [0, 3, 0], [0, 0, 0.5]], device=device)
    queries = torch.tensor([[0.0, 0, 0], [10.0, 10, 10]], device=device)
    idx = ball_query(points, queries, radius=1.0, k=4)
    # distances from query 0: p0 0, p2 0.5, p4 0.5 (tie -> smaller index first), p1 1.0 (== radius counts)
    assert idx.tolist() == [[0, 2, 4, 1], [-1, -1, -1, -1]]
    assert ball_query(points, queries, radius=0.6, k=2).tolist() == [[0, 2], [-1, -1]]


def test_knn_hand_computed_and_short_cloud(device):
    points = torch.tensor([[0.0, 0, 0], [2, 0, 0], [0, 1, 0]], device=device)
    idx, dist = knn(points, torch.tensor([[0.0, 0.9, 0]], device=device), k=4)
    assert idx.tolist() == [[2, 0, 1, -1]]
    assert torch.allclose(dist[0, :3].cpu(), torch.tensor([0.1, 0.9, (4 + 0.81) ** 0.5]), atol=1e-6)
    assert dist[0, 3].item() == float("inf")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ball_query_matches_reference_ragged(device, dtype):
    points, queries, p_off, q_off = _random_batch(1, dtype, device)
    got = ball_query(points, queries, 0.5, 12, p_off, q_off)
    ref = ball_query_reference(points, queries, p_off, q_off, 0.5, 12)
    assert torch.equal(got, ref)
    # indices stay inside their own cloud
    starts = torch.tensor([0, 400, 400, 1500])
    for b, (q0, q1) in enumerate([(0, 100), (100, 150), (150, 300)]):
        block = got[q0:q1]
        valid = block[block >= 0]
        assert bool(((valid >= starts[b]) & (valid < starts[b + 1])).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_knn_matches_reference_ragged(device, dtype):
    points, queries, p_off, q_off = _random_batch(2, dtype, device)
    idx, dist = knn(points, queries, 10, p_off, q_off)
    ref_idx, ref_dist = knn_reference(points, queries, p_off, q_off, 10)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(dist, ref_dist)


def test_large_ragged_batch_on_four_threads_matches_reference(four_threads):
    # 140k points: the CPU grid build splits them into 4 chunks, with cloud borders inside chunks.
    gen = torch.Generator().manual_seed(3)
    points = torch.rand(140_000, 3, generator=gen) * torch.tensor([60.0, 60.0, 4.0])
    queries = torch.rand(600, 3, generator=gen) * torch.tensor([60.0, 60.0, 4.0])
    p_off, q_off = torch.tensor([30_001, 30_001, 99_999, 140_000]), torch.tensor([200, 200, 450, 600])
    assert torch.equal(ball_query(points, queries, 0.4, 8, p_off, q_off),
                       ball_query_reference(points, queries, p_off, q_off, 0.4, 8))
    idx, dist = knn(points, queries, 6, p_off, q_off)
    ref_idx, ref_dist = knn_reference(points, queries, p_off, q_off, 6)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(dist, ref_dist)


def test_duplicate_points_tie_by_index(device):
    points = torch.zeros(10, 3, device=device)
    idx = ball_query(points, torch.zeros(1, 3, device=device), 0.1, 4)
    assert idx.tolist() == [[0, 1, 2, 3]]
    knn_idx, knn_dist = knn(points, torch.ones(1, 3, device=device), 3)
    assert knn_idx.tolist() == [[0, 1, 2]]


def test_batched_matches_per_cloud_calls(device):
    gen = torch.Generator().manual_seed(3)
    points = (torch.rand(3, 400, 3, generator=gen) * 4).to(device)
    queries = (torch.rand(3, 64, 3, generator=gen) * 4).to(device)
    idx = ball_query(points, queries, 0.6, 8)
    knn_idx, knn_dist = knn(points, queries, 5)
    assert idx.shape == (3, 64, 8) and knn_idx.shape == (3, 64, 5) and knn_dist.shape == (3, 64, 5)
    for b in range(3):
        assert torch.equal(idx[b], ball_query(points[b], queries[b], 0.6, 8))
        assert torch.equal(knn_idx[b], knn(points[b], queries[b], 5)[0])


def test_three_nn_is_knn_3(device):
    points, queries, p_off, q_off = _random_batch(4, device=device)
    idx, dist = three_nn(points, queries, p_off, q_off)
    ref = knn(points, queries, 3, p_off, q_off)
    assert torch.equal(idx, ref[0]) and torch.equal(dist, ref[1])


def test_ball_query_real_scan_against_ckdtree(kitti_scan):
    from scipy.spatial import cKDTree

    points = _kitti_points(kitti_scan)
    gen = torch.Generator().manual_seed(0)
    queries = points[torch.randperm(points.shape[0], generator=gen)[:1024]]
    radius, k = 0.8, 32
    idx = ball_query(points, queries, radius, k)
    tree = cKDTree(points.numpy().astype(np.float64))
    sp_dist, sp_idx = tree.query(queries.numpy().astype(np.float64), k=k, distance_upper_bound=radius)
    ours = torch.where(idx >= 0, torch.linalg.norm(points[idx.clamp(min=0)].double() - queries[:, None].double(), dim=2),
                       torch.full(idx.shape, float("inf"), dtype=torch.float64)).numpy()
    # Distances rank by rank agree (float32 vs float64 rounding only matters within 1e-5 of the radius).
    finite = np.isfinite(ours) & np.isfinite(sp_dist)
    assert np.allclose(ours[finite], sp_dist[finite], atol=1e-5)
    disagree = np.isfinite(ours) != np.isfinite(sp_dist)
    assert np.all(np.abs(np.where(np.isfinite(ours), ours, sp_dist)[disagree] - radius) < 1e-5)
    assert (idx >= 0).sum() > 1024 * 4  # the test is not vacuous


def test_knn_real_scan_against_ckdtree(kitti_scan):
    from scipy.spatial import cKDTree

    points = _kitti_points(kitti_scan)
    gen = torch.Generator().manual_seed(1)
    queries = points[torch.randperm(points.shape[0], generator=gen)[:2048]] + 0.05
    idx, dist = knn(points, queries, 16)
    tree = cKDTree(points.numpy().astype(np.float64))
    sp_dist, sp_idx = tree.query(queries.numpy().astype(np.float64), k=16)
    assert np.allclose(dist.numpy(), sp_dist, atol=1e-5)
    # Same neighbours except where two distances tie within float32 rounding.
    same = idx.numpy() == sp_idx
    assert same.mean() > 0.999


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: ball_query(torch.rand(5, 3), torch.rand(2, 3), 0.0, 4), "radius"),
        (lambda: ball_query(torch.rand(5, 3), torch.rand(2, 3), 0.5, 0), "k"),
        (lambda: knn(torch.rand(5, 3), torch.rand(2, 3), 0), "k"),
        (lambda: knn(torch.rand(5, 3).int(), torch.rand(2, 3), 2), "points"),
        (lambda: knn(torch.rand(5, 3), torch.rand(2, 3).double(), 2), "dtype"),
        (lambda: knn(torch.rand(5, 4), torch.rand(2, 3), 2), "points"),
        (lambda: knn(torch.zeros(0, 3), torch.rand(2, 3), 2), "points"),
        (lambda: knn(torch.tensor([[0.0, float("nan"), 0]]), torch.rand(2, 3), 2), "NaN"),
        (lambda: knn(torch.rand(5, 3), torch.tensor([[float("inf"), 0, 0]]), 2), "queries"),
        (lambda: knn(torch.rand(5, 3), torch.rand(2, 3), 2, torch.tensor([2, 4]), torch.tensor([1, 2])), "points_offsets"),
        (lambda: knn(torch.rand(5, 3), torch.rand(2, 3), 2, torch.tensor([2, 5]), torch.tensor([2])), "clouds"),
        (lambda: knn(torch.rand(5, 3), torch.rand(2, 3), 2, torch.tensor([5])), "both"),
    ],
)
def test_bad_input_names_the_argument(call, word):
    with pytest.raises(PcsegValueError, match=word):
        call()


def test_opcheck():
    from pcseg._ext import extension_loaded
    from pcseg.ops._common import use_extension

    if not extension_loaded():
        pytest.skip("extension not built")
    points, queries, p_off, q_off = _random_batch(5)
    use_extension("knn", points)  # registers the fake kernels
    torch.library.opcheck(torch.ops.pcseg.ball_query.default, (points, queries, p_off, q_off, 0.5, 8))
    torch.library.opcheck(torch.ops.pcseg.knn.default, (points, queries, p_off, q_off, 4))


@pytest.mark.parametrize("op, extra", [("ball_query", (0.5, 8)), ("knn", (4,))])
def test_raw_operators_check_their_inputs(op, extra):
    from pcseg._ext import extension_loaded
    from pcseg.ops._common import use_extension

    points, queries, p_off, q_off = _random_batch(6)
    if not extension_loaded() or not use_extension(op, points):
        pytest.skip("extension not built")
    raw = getattr(torch.ops.pcseg, op)
    with pytest.raises(RuntimeError, match="same dtype"):
        raw(points, queries.double(), p_off, q_off, *extra)
    with pytest.raises(RuntimeError, match="same number of clouds"):
        raw(points, queries, p_off, q_off[:2], *extra)
    with pytest.raises(RuntimeError, match=r"shape \(N, 3\)"):
        raw(points[:, :2], queries, p_off, q_off, *extra)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
@pytest.mark.parametrize("k", [1, 7, 32, 33, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu_on_a_dense_ragged_batch(k, dtype):
    # About 150 points within each query's radius (the warp kernel merges many batches of 32 for
    # k <= 32; k > 32 takes the thread-per-query kernel), 100 copies of one point (equal
    # distances: ties go to the smaller index), and an empty cloud in the middle.
    gen = torch.Generator().manual_seed(7)
    points = torch.rand(60_000, 3, generator=gen, dtype=dtype) * torch.tensor([10.0, 10.0, 2.0], dtype=dtype)
    points[100:200] = points[100]
    queries = torch.cat([points[::20] + 0.01, points[150:151]])
    p_off = torch.tensor([25_000, 25_000, 60_000])
    q_off = torch.tensor([1_000, 1_000, queries.shape[0]])
    on_cpu = ball_query(points, queries, 0.5, k, p_off, q_off)
    on_gpu = ball_query(points.cuda(), queries.cuda(), 0.5, k, p_off.cuda(), q_off.cuda())
    assert torch.equal(on_cpu, on_gpu.cpu())
    assert (on_cpu[:, 0] >= 0).all()  # every query has neighbours: the comparison is not of empty rows
    idx_cpu, dist_cpu = knn(points, queries, k, p_off, q_off)
    idx_gpu, dist_gpu = knn(points.cuda(), queries.cuda(), k, p_off.cuda(), q_off.cuda())
    assert torch.equal(idx_cpu, idx_gpu.cpu())
    assert torch.equal(dist_cpu, dist_gpu.cpu())


@needs_cuda
def test_cuda_ball_query_real_scan_matches_cpu(kitti_scan):
    points = _kitti_points(kitti_scan)
    queries = points[torch.randperm(points.shape[0], generator=torch.Generator().manual_seed(0))[:4096]]
    on_cpu = ball_query(points, queries, 0.8, 32)
    on_gpu = ball_query(points.cuda(), queries.cuda(), 0.8, 32)
    assert torch.equal(on_cpu, on_gpu.cpu())
