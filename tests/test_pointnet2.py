"""PointNet++ (SSG, MSG): shapes, the model protocol, gradients, layers against naive
references written here (scipy neighbours, unsplit linear layers), and overfitting a scene."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from pcseg.errors import PcsegValueError
from pcseg.models.pointnet2 import PointNet2MSG, PointNet2SSG
from pcseg.models.pointnet2_modules import FeaturePropagation, SetAbstraction

MODELS = [PointNet2SSG, PointNet2MSG]


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomize_batch_norms(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics so eval-mode batch norm is not the identity."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _room(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, generator=g) * torch.tensor([2.0, 2.0, 1.0])


@pytest.mark.parametrize("model_cls", MODELS)
def test_dense_forward_shapes_and_presets(model_cls, device):
    for preset, in_channels in (("indoor", 3), ("lidar", 1)):
        model = model_cls(5, in_channels=in_channels, preset=preset, width=0.25).to(device)
        xyz = _room(2 * 300, 0).reshape(2, 300, 3).to(device)
        feats = torch.rand(2, 300, in_channels, device=device)
        logits = model(xyz, feats)
        assert logits.shape == (2, 300, 5)
        assert logits.dtype == torch.float32 and bool(torch.isfinite(logits).all())
        assert model.num_classes == 5 and model.in_channels == in_channels
    xyz_only = model_cls(4, width=0.25).to(device)
    assert xyz_only(_room(128, 1)[None].to(device)).shape == (1, 128, 4)


@pytest.mark.parametrize("model_cls", MODELS)
def test_ragged_batch_equals_each_cloud_alone(model_cls):
    """In eval mode a cloud's logits do not depend on the other clouds of the batch, and the
    dense path is the ragged path with equal counts."""
    torch.manual_seed(0)
    model = model_cls(6, in_channels=2, width=0.25).eval()
    _randomize_batch_norms(model)
    sizes = [37, 400, 1, 129]
    clouds = [_room(n, i) for i, n in enumerate(sizes)]
    feats = [torch.rand(n, 2) for n in sizes]
    offsets = torch.cumsum(torch.tensor(sizes), 0)
    with torch.no_grad():
        together = model.forward_ragged(torch.cat(clouds), torch.cat(feats), offsets)
        alone = torch.cat([model.forward_ragged(c, f, torch.tensor([len(c)]))
                           for c, f in zip(clouds, feats)])
        dense = model(clouds[1][None], feats[1][None])[0]
        again = model.forward_ragged(torch.cat(clouds), torch.cat(feats), offsets)
    assert together.shape == (sum(sizes), 6)
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(dense, alone[37:437], rtol=1e-4, atol=1e-5)
    assert torch.equal(together, again)  # deterministic in eval mode


def test_empty_cloud_in_ragged_batch_owns_no_rows():
    model = PointNet2SSG(3, width=0.25).eval()
    xyz = _room(50, 3)
    with torch.no_grad():
        with_empty = model.forward_ragged(xyz, None, torch.tensor([0, 20, 20, 50]))
        without = model.forward_ragged(xyz, None, torch.tensor([20, 50]))
    torch.testing.assert_close(with_empty, without)


def test_translation_changes_nothing_without_features():
    """xyz enters only relative to centroids, so shifting a cloud leaves the logits alone."""
    model = PointNet2SSG(4, width=0.25).eval()
    _randomize_batch_norms(model)
    xyz = _room(256, 4)
    with torch.no_grad():
        base = model(xyz[None])
        shifted = model((xyz + torch.tensor([5.0, -3.0, 2.0]))[None])
    torch.testing.assert_close(base, shifted, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("model_cls", MODELS)
def test_gradients_reach_every_parameter(model_cls):
    torch.manual_seed(1)
    model = model_cls(4, in_channels=1, width=0.25).train()
    xyz = _room(2 * 256, 5).reshape(2, 256, 3)
    logits = model(xyz, torch.rand(2, 256, 1))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 4), torch.randint(0, 4, (512,)))
    loss.backward()
    missing = [name for name, p in model.named_parameters()
               if p.grad is None or not bool(torch.isfinite(p.grad).all()) or float(p.grad.abs().sum()) == 0]
    assert not missing, f"no gradient reached: {missing}"


def _textbook_mlp(rows: torch.Tensor, layer) -> torch.Tensor:
    """relu(BN(rows @ W.T)) for the layer's first linear and every later one, with the
    BatchNorm modules themselves (no folding, no split weights)."""
    pairs = [(layer.first, layer.first_norm)] + list(zip(layer.rest.linears, layer.rest.norms))
    for linear, norm in pairs:
        rows = torch.relu(norm(rows @ linear.weight.T))
    return rows


def _naive_ball_neighbours(points: np.ndarray, centers: np.ndarray, radius: float, k: int):
    """The k nearest points within radius (ties by index), padded with the nearest one."""
    d = np.linalg.norm(centers[:, None, :].astype(np.float64) - points[None].astype(np.float64), axis=2)
    rows = []
    for row in d:
        order = np.lexsort((np.arange(len(row)), row))
        inside = [j for j in order[:k] if row[j] <= radius]
        rows.append(inside + [inside[0]] * (k - len(inside)))
    return np.array(rows)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("radii,nsamples", [((0.3,), (8,)), ((0.2, 0.5), (4, 16))])
def test_set_abstraction_matches_naive_grouping(radii, nsamples, training):
    """The split first layer (features projected before grouping, batch norm folded in eval)
    equals the textbook layer: concatenate [(p - c) / r, f] per neighbour, full MLP with the
    BatchNorm modules (batch statistics when training), max over neighbours."""
    torch.manual_seed(2)
    sa = SetAbstraction(3, 4, radii, nsamples, [(8, 16)] * len(radii)).train(training)
    _randomize_batch_norms(sa)
    reference = copy.deepcopy(sa)  # running statistics change when training
    sizes = [60, 90]
    xyz = torch.cat([_room(n, 10 + i) for i, n in enumerate(sizes)])
    feats = torch.rand(sum(sizes), 3)
    offsets = torch.cumsum(torch.tensor(sizes), 0)
    with torch.no_grad():
        centers, out, center_offsets = sa(xyz, feats, offsets)
    assert center_offsets.tolist() == [15, 15 + 23]
    assert out.shape == (38, 16 * len(radii))
    # centroids are points of their own cloud
    assert set(map(tuple, centers[:15].tolist())) <= set(map(tuple, xyz[:60].tolist()))
    assert set(map(tuple, centers[15:].tolist())) <= set(map(tuple, xyz[60:].tolist()))
    per_scale = []
    for branch, r, k in zip(reference.branches, radii, nsamples):
        rows = []  # both clouds' rows go through one MLP call: one set of batch statistics
        for start, stop, cstart, cstop in [(0, 60, 0, 15), (60, 150, 15, 38)]:
            pts, f, c = xyz[start:stop], feats[start:stop], centers[cstart:cstop]
            nb = torch.from_numpy(_naive_ball_neighbours(pts.numpy(), c.numpy(), r, k))
            rows.append(torch.cat([(pts[nb] - c[:, None]) / r, f[nb]], dim=2))
        rows = torch.cat(rows)
        with torch.no_grad():
            h = _textbook_mlp(rows.reshape(-1, rows.shape[-1]), branch)
        per_scale.append(h.reshape(38, k, -1).amax(1))
    torch.testing.assert_close(out, torch.cat(per_scale, 1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("training", [False, True])
def test_feature_propagation_matches_scipy_interpolation(training):
    torch.manual_seed(3)
    fp = FeaturePropagation(6, 2, (8, 5)).train(training)
    _randomize_batch_norms(fp)
    reference = copy.deepcopy(fp)
    fine_sizes, coarse_sizes = [50, 80], [12, 20]
    fine = torch.cat([_room(n, 20 + i) for i, n in enumerate(fine_sizes)])
    coarse = torch.cat([_room(n, 30 + i) for i, n in enumerate(coarse_sizes)])
    coarse_feats, skip = torch.randn(32, 6), torch.randn(130, 2)
    with torch.no_grad():
        out = fp(fine, torch.tensor([50, 130]), skip, coarse, torch.tensor([12, 32]), coarse_feats)
    interpolated = []
    for (fs, fe), (cs, ce) in zip([(0, 50), (50, 130)], [(0, 12), (12, 32)]):
        dist, idx = cKDTree(coarse[cs:ce].numpy()).query(fine[fs:fe].numpy(), k=3)
        w = 1.0 / (dist + 1e-8)
        w /= w.sum(1, keepdims=True)
        values = coarse_feats[cs:ce].numpy()[idx]  # (n, 3, C)
        interpolated.append(torch.from_numpy((values * w[..., None]).sum(1)).float())
    rows = torch.cat([torch.cat(interpolated), skip], dim=1)
    with torch.no_grad():
        expected = _textbook_mlp(rows, reference)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_bad_inputs_raise_named_errors():
    model = PointNet2SSG(3, in_channels=1, width=0.25)
    xyz = _room(20, 0)
    with pytest.raises(PcsegValueError, match="xyz"):
        model(xyz)  # missing batch axis
    with pytest.raises(PcsegValueError, match="features"):
        model(xyz[None], torch.rand(1, 19, 1))
    with pytest.raises(PcsegValueError, match="feats"):
        model.forward_ragged(xyz, None, torch.tensor([20]))
    with pytest.raises(PcsegValueError, match="offsets"):
        model.forward_ragged(xyz, torch.rand(20, 1), torch.tensor([5, 19]))
    with pytest.raises(PcsegValueError, match="NaN"):
        model.forward_ragged(torch.full((20, 3), float("nan")), torch.rand(20, 1), torch.tensor([20]))
    with pytest.raises(PcsegValueError, match="preset"):
        PointNet2SSG(3, preset="outdoor")
    with pytest.raises(PcsegValueError, match="radii"):
        PointNet2MSG(3, radii=((0.1,), (0.2,), (0.4,), (0.8,)))
    with pytest.raises(PcsegValueError, match="bn_momentum"):
        PointNet2SSG(3, bn_momentum=0.0)


def _toy_scene(n: int = 1024):
    """Floor, wall, box and sphere in a 2 m room: four classes with distinct local shapes."""
    g = torch.Generator().manual_seed(0)
    k = n // 4
    floor = torch.cat([torch.rand(k, 2, generator=g) * 2, torch.zeros(k, 1)], 1)
    wall = torch.cat([torch.zeros(k, 1), torch.rand(k, 2, generator=g) * torch.tensor([2.0, 1.0])], 1)
    box = torch.rand(k, 3, generator=g) * 0.4 + torch.tensor([1.2, 0.3, 0.0])
    direction = torch.randn(n - 3 * k, 3, generator=g)
    sphere = direction / direction.norm(dim=1, keepdim=True) * 0.25 + torch.tensor([0.6, 1.4, 0.5])
    labels = torch.arange(4).repeat_interleave(torch.tensor([k, k, k, n - 3 * k]))
    return torch.cat([floor, wall, box, sphere]), labels


def _miou(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    confusion = torch.bincount(target * num_classes + pred, minlength=num_classes ** 2)
    confusion = confusion.reshape(num_classes, num_classes)  # rows: target, columns: prediction
    tp = confusion.diag().double()
    union = confusion.sum(0).double() + confusion.sum(1).double() - tp
    return float((tp[union > 0] / union[union > 0]).mean())


def test_tiny_scene_overfits():
    """Eval-mode mIoU (batch-norm running statistics, no dropout) on a 1,024-point scene."""
    torch.manual_seed(0)
    xyz, labels = _toy_scene()
    model = PointNet2SSG(4, width=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    best = 0.0
    for step in range(1, 151):
        model.train()
        loss = torch.nn.functional.cross_entropy(model(xyz[None])[0], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            model.eval()
            with torch.no_grad():
                best = max(best, _miou(model(xyz[None])[0].argmax(1), labels, 4))
            if best >= 0.95:
                break
    assert best >= 0.95, f"eval-mode mIoU reached only {best:.3f}"


def test_mixed_precision_forward_and_backward():
    """Under autocast (bfloat16 on the CPU, float16 on GPUs) half-precision features reach the
    interpolation; the logits stay close to float32's."""
    torch.manual_seed(4)
    model = PointNet2SSG(5, in_channels=2, width=0.25).eval()
    _randomize_batch_norms(model)
    xyz, feats = _room(512, 6).reshape(2, 256, 3), torch.rand(2, 256, 2)
    with torch.no_grad():
        full = model(xyz, feats)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(xyz, feats)
    assert half.shape == full.shape and bool(torch.isfinite(half).all())
    torch.testing.assert_close(half.float(), full, rtol=0.1, atol=0.1 * float(full.abs().max()))
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(xyz, feats).float().square().mean().backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters())


@pytest.mark.parametrize("model_cls", MODELS)
def test_chunked_inference_equals_one_pass(model_cls, monkeypatch):
    """Without gradients the layers run in row chunks into one output; with them, in one
    pass. Tiny chunks (64 rows) force every level and the fused head through the chunked path."""
    from pcseg.models import pointnet2_modules

    torch.manual_seed(5)
    model = model_cls(7, in_channels=1, width=0.25).eval()
    _randomize_batch_norms(model)
    xyz, feats, offsets = _room(700, 7), torch.rand(700, 1), torch.tensor([300, 700])
    with torch.enable_grad():
        one_pass = model.forward_ragged(xyz, feats, offsets).detach()
    monkeypatch.setattr(pointnet2_modules, "chunk_rows", lambda device: 64)
    calls = []
    original = pointnet2_modules.map_row_chunks
    monkeypatch.setattr(pointnet2_modules, "map_row_chunks",
                        lambda fn, n, *a, **k: calls.append(n) or original(fn, n, *a, **k))
    with torch.no_grad():
        chunked = model.forward_ragged(xyz, feats, offsets)
    assert max(calls) == 700  # the last level (with the head) was chunked too
    torch.testing.assert_close(chunked, one_pass, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("model_cls", MODELS)
def test_cuda_matches_cpu(model_cls):
    """Same neighbours on both devices (the ops break ties alike), so the same logits."""
    torch.manual_seed(6)
    model = model_cls(6, in_channels=1, width=0.25).eval()
    _randomize_batch_norms(model)
    xyz, feats, offsets = _room(900, 8), torch.rand(900, 1), torch.tensor([350, 900])
    with torch.no_grad():
        cpu = model.forward_ragged(xyz, feats, offsets)
        gpu = model.cuda().forward_ragged(xyz.cuda(), feats.cuda(), offsets.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-3, atol=1e-4)
