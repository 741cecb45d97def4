"""PointTransformerV3 and its serialization: curve codes against naive references, patches,
attention against a per-patch loop, batch consistency, gradients, overfit."""

from __future__ import annotations

import math

import pytest
import torch

from pcseg.engine.builders import build_model
from pcseg.errors import PcsegValueError
from pcseg.models import PointTransformerV3
from pcseg.models.ptv3 import SerializedAttention, patch_index
from pcseg.models.serialization import hilbert_encode, serialize, z_order_encode
import model_checks

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(enc_depths=(1, 1, 1), enc_channels=(16, 32, 32), enc_heads=(2, 2, 4),
             dec_depths=(1, 1), dec_channels=(16, 32), dec_heads=(2, 2), patch_size=16, mlp_ratio=2)


def ragged_clouds(sizes=(300, 200), seed=0, extent=2.0):
    return model_checks.ragged_clouds(sizes, seed, extent, low=-extent / 3)


def naive_morton(x: int, y: int, z: int, depth: int = 16) -> int:
    """Bit k of x, y, z -> bits 3k+2, 3k+1, 3k, one bit at a time with Python ints."""
    code = 0
    for k in range(depth):
        code |= ((x >> k) & 1) << (3 * k + 2)
        code |= ((y >> k) & 1) << (3 * k + 1)
        code |= ((z >> k) & 1) << (3 * k)
    return code


def test_z_order_matches_hand_written_bit_interleaving():
    g = torch.Generator().manual_seed(0)
    grid = torch.randint(0, 2**16, (500, 3), generator=g)
    expected = torch.tensor([naive_morton(*row) for row in grid.tolist()])
    assert torch.equal(z_order_encode(grid), expected)
    # a hand case: x = 1 -> bit 2, y = 1 -> bit 1, z = 1 -> bit 0, x = 2 -> bit 5
    assert z_order_encode(torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [2, 0, 0]])).tolist() == [4, 2, 1, 32]


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_hilbert_visits_a_full_cube_by_unit_steps(depth):
    """The defining property: the codes of a 2^d cube are a bijection onto 0..8^d - 1 and
    consecutive codes are face-adjacent voxels (z-order has jumps; a Hilbert curve has none)."""
    side = 2**depth
    r = torch.arange(side)
    grid = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    codes = hilbert_encode(grid, depth)
    assert torch.equal(torch.sort(codes).values, torch.arange(side**3))
    path = grid[torch.argsort(codes)]
    assert torch.equal((path[1:] - path[:-1]).abs().sum(1), torch.ones(side**3 - 1, dtype=torch.int64))
    assert path[0].tolist() == [0, 0, 0]
    if depth > 1:  # z-order, for contrast, jumps
        zpath = grid[torch.argsort(z_order_encode(grid, depth))]
        assert int((zpath[1:] - zpath[:-1]).abs().sum(1).max()) > 1


def test_hilbert_matches_the_hilbertcurve_package():
    hc = pytest.importorskip("hilbertcurve.hilbertcurve")
    curve = hc.HilbertCurve(16, 3)
    g = torch.Generator().manual_seed(1)
    grid = torch.randint(0, 2**16, (400, 3), generator=g)
    expected = torch.tensor([curve.distance_from_point(p) for p in grid.tolist()])
    assert torch.equal(hilbert_encode(grid), expected)


def test_serialize_is_per_cloud_relative_with_batch_in_the_high_bits():
    coords = torch.tensor([[0, 5, 7, 9], [0, 6, 7, 9], [1, -3, 2, 4], [1, -2, 3, 4]], dtype=torch.int32)
    z = serialize(coords, "z")
    # each cloud is shifted to its own minimum: (0,0,0),(1,0,0) and (0,0,0),(1,1,0)
    assert z.tolist() == [0, 4, (1 << 48) | 0, (1 << 48) | naive_morton(1, 1, 0)]
    zt = serialize(coords, "z-trans")  # x and y swapped
    assert zt.tolist() == [0, 2, 1 << 48, (1 << 48) | naive_morton(1, 1, 0)]
    h, ht = serialize(coords, "hilbert"), serialize(coords, "hilbert-trans")
    grid = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 0, 0], [1, 1, 0]])
    assert torch.equal(h & ((1 << 48) - 1), hilbert_encode(grid))
    assert torch.equal(ht & ((1 << 48) - 1), hilbert_encode(grid[:, [1, 0, 2]]))
    shifted = coords.clone()
    shifted[:, 1:] += 1000
    for order in ("z", "hilbert", "hilbert-trans"):
        assert torch.equal(serialize(shifted, order), serialize(coords, order))
    with pytest.raises(PcsegValueError, match="order"):
        serialize(coords, "peano")
    with pytest.raises(PcsegValueError, match="voxel size"):
        serialize(torch.tensor([[0, 0, 0, 0], [0, 70000, 0, 0]], dtype=torch.int32), "z")


def test_patches_cover_each_voxel_once_in_code_order_within_clouds():
    g = torch.Generator().manual_seed(3)
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor([37, 16, 5]))
    codes = (batch << 48) | torch.randperm(58, generator=g)
    index, full = patch_index(codes, batch, 16)
    assert index.shape == (3 + 1 + 1, 16)  # ceil(37/16) + ceil(16/16) + ceil(5/16)
    assert full.tolist() == [True, True, False, True, False]
    valid = index[index < 58]
    assert torch.equal(torch.sort(valid).values, torch.arange(58))
    for row in index:
        rows = row[row < 58]
        assert len(set(batch[rows].tolist())) == 1  # a patch never mixes clouds
        assert bool((codes[rows][1:] > codes[rows][:-1]).all())  # consecutive in code order
    order = torch.argsort(codes)
    assert torch.equal(index[:3].reshape(-1)[:37], order[:37])


def test_attention_matches_a_per_patch_loop():
    torch.manual_seed(0)
    v, c, heads, k = 45, 8, 2, 16
    attn = SerializedAttention(c, heads).double()
    feats = torch.randn(v, c, dtype=torch.float64)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([30, 15]))
    codes = (batch << 48) | torch.randperm(v)
    index, full = patch_index(codes, batch, k)
    ours = attn(feats, index, full)

    expected = torch.zeros(v, c, dtype=torch.float64)
    qkv = attn.qkv(feats)
    d = c // heads
    for row in index:
        rows = row[row < v]
        q, kk, val = qkv[rows].view(len(rows), 3, heads, d).unbind(1)
        for h in range(heads):
            w = torch.softmax(q[:, h] @ kk[:, h].T / math.sqrt(d), dim=1)
            expected[rows, h * d:(h + 1) * d] = w @ val[:, h]
    torch.testing.assert_close(ours, attn.proj(expected))


def test_shapes_and_every_parameter_gets_a_gradient():
    xyz, feats, offsets = ragged_clouds()
    model = PointTransformerV3(5, 4, grid_size=0.1, **SMALL)
    model_checks.assert_every_parameter_gets_a_gradient(model, xyz, feats, offsets, num_classes=5)


def test_a_cloud_alone_and_in_a_batch_gets_the_same_logits():
    xyz, feats, _ = ragged_clouds(sizes=(300, 250, 200), seed=4)
    model = PointTransformerV3(4, 4, grid_size=0.1, **SMALL)
    _, alone, _ = model_checks.three_cloud_logits(model, xyz, feats)
    with torch.no_grad():
        # a rigid shift by whole coarsest-level cells (stride 4 = 0.4 m) changes neither voxels, pooling cells nor codes
        moved = model.forward_ragged(xyz[300:550] + 0.8, feats[300:550], torch.tensor([250]))
    torch.testing.assert_close(moved, alone, rtol=1e-4, atol=1e-4)


def test_orders_are_shuffled_in_training_only():
    model = PointTransformerV3(4, 4, grid_size=0.1, **SMALL)
    torch.manual_seed(0)
    seen = {tuple(model._level_orders()) for _ in range(30)}
    assert len(seen) > 3 and all(sorted(s) == sorted(model.orders) for s in seen)
    model.eval()
    assert {tuple(model._level_orders()) for _ in range(5)} == {tuple(model.orders)}


def test_tiny_overfit():
    torch.manual_seed(0)
    xyz, feats, offsets = ragged_clouds(sizes=(400,), seed=1)
    labels = (xyz[:, 0] > 0.5).long() + (xyz[:, 2] > 0.5).long()
    model = PointTransformerV3(3, 4, grid_size=0.1, **SMALL)
    losses, acc = model_checks.fit(model, xyz, feats, offsets, labels, steps=40, lr=0.005)
    assert losses[-1] < 0.5 * losses[0] and acc > 0.9, (losses, acc)


def test_built_from_a_config_section_and_bad_arguments():
    model = build_model({"name": "PointTransformerV3", "grid_size": 0.2, "orders": ["z", "hilbert"],
                         **{k: list(v) if isinstance(v, tuple) else v for k, v in SMALL.items()}}, 20, 4)
    assert isinstance(model, PointTransformerV3) and model.orders == ["z", "hilbert"]
    for kwargs, match in ((dict(orders=["peano"]), "orders"), (dict(grid_size=0), "grid_size"),
                          (dict(enc_depths=(1, 1)), "one entry per stage"),
                          (dict(enc_channels=(16, 31, 32)), "heads")):
        with pytest.raises(PcsegValueError, match=match):
            PointTransformerV3(3, 4, **{**SMALL, **kwargs})


def test_engine_inference_labels_are_the_argmax_of_forward_ragged():
    # pcseg.engine.inference calls forward_voxels(xyz, feats, offsets) on models that have it
    # (the trainer's validation and Segmenter); PTv3's must follow that signature
    from pcseg.engine.inference import predict_labels

    xyz, feats, offsets = ragged_clouds(sizes=(300, 200), seed=2)
    model = PointTransformerV3(5, 4, grid_size=0.1, **SMALL).eval()
    with torch.no_grad():
        reference = model.forward_ragged(xyz, feats, offsets)
    reference[:, 0] = float("-inf")  # class 0 ignored
    labels = predict_labels(model, xyz, feats, offsets, ignore_index=(0,))
    assert torch.equal(labels, reference.argmax(1))
