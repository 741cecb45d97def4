"""Panoptic model pieces: centre clustering (against scipy), offset targets and loss, the
instance head on MinkUNet, and an oracle run through predict_panoptic scored with PQ."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcseg.engine.losses import instance_centres, offset_l1_sum
from pcseg.models import PanopticMinkUNet
from pcseg.models.clustering import cluster_centres

scipy_sparse = pytest.importorskip("scipy.sparse")
from scipy.sparse.csgraph import connected_components  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

THINGS = (1, 2, 3)


def reference_clusters(centres, semantic, cloud, things, cell):
    """Partition of the thing points by scipy: cells per (cloud, class), 26-neighbour pairs by a
    Chebyshev-radius-1 KD-tree query, connected components. Returns int64 (N,) (-1 = no thing)."""
    out = np.full(len(centres), -1, dtype=np.int64)
    next_id = 0
    for b in np.unique(cloud):
        for c in things:
            idx = np.flatnonzero((cloud == b) & (semantic == c))
            if not len(idx):
                continue
            cells, inverse = np.unique(np.floor(centres[idx] / cell).astype(np.int64), axis=0, return_inverse=True)
            pairs = np.array(sorted(cKDTree(cells).query_pairs(1.0, p=np.inf)), dtype=np.int64).reshape(-1, 2)
            graph = scipy_sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])),
                                            shape=(len(cells), len(cells)))
            _, comp = connected_components(graph, directed=False)
            out[idx] = comp[inverse.reshape(-1)] + next_id
            next_id += comp.max() + 1
    return out


def same_partition(a, b) -> bool:
    pairs = np.unique(np.stack([a, b], 1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def blobs(seed, n_clouds=2):
    rng = np.random.default_rng(seed)
    xyz, sem, cloud = [], [], []
    for b in range(n_clouds):
        for _ in range(12):
            centre = rng.uniform(-20, 20, 3)
            m = int(rng.integers(5, 200))
            xyz.append(centre + rng.normal(0, rng.uniform(0.05, 0.6), (m, 3)))
            sem.append(np.full(m, rng.integers(0, 5)))  # classes 0, 4 are stuff here
            cloud.append(np.full(m, b))
    return np.concatenate(xyz), np.concatenate(sem), np.concatenate(cloud)


@pytest.mark.parametrize("seed", range(3))
def test_clustering_matches_scipy_components(seed):
    xyz, sem, cloud = blobs(seed)
    offsets = torch.from_numpy(np.cumsum(np.bincount(cloud)))
    inst = cluster_centres(torch.from_numpy(xyz), torch.from_numpy(sem), offsets, THINGS, 0.3).numpy()
    ref = reference_clusters(xyz, sem, cloud, THINGS, 0.3)
    thing = np.isin(sem, THINGS)
    assert (inst[~thing] == 0).all() and (inst[thing] > 0).all()
    # instance ids are per cloud: make them global before comparing partitions
    assert same_partition(inst[thing] + 100_000 * cloud[thing], ref[thing])
    for b in np.unique(cloud):  # 1..K per cloud, every id used
        ids = np.unique(inst[(cloud == b) & thing])
        assert list(ids) == list(range(1, len(ids) + 1))
    # every instance holds one class
    pairs = np.unique(np.stack([inst + 100_000 * cloud, sem], 1)[thing], axis=0)
    assert len(pairs) == len(np.unique((inst + 100_000 * cloud)[thing]))


def test_clustering_is_order_independent_and_chains():
    xyz, sem, cloud = blobs(7, n_clouds=1)
    offsets = torch.tensor([len(xyz)])
    a = cluster_centres(torch.from_numpy(xyz), torch.from_numpy(sem), offsets, THINGS, 0.3).numpy()
    perm = np.random.default_rng(0).permutation(len(xyz))
    b = cluster_centres(torch.from_numpy(xyz[perm]), torch.from_numpy(sem[perm]), offsets, THINGS, 0.3).numpy()
    np.testing.assert_array_equal(a[perm], b)  # the same ids, not only the same partition
    # a chain of touching cells is one instance however long; a gap of two cells splits it
    line = np.stack([np.arange(40) * 0.25, np.zeros(40), np.zeros(40)], 1)
    line[20:, 0] += 0.6
    ids = cluster_centres(torch.from_numpy(line), torch.ones(40, dtype=torch.int64), torch.tensor([40]), (1,), 0.25)
    assert ids[:20].unique().tolist() == [1] and ids[20:].unique().tolist() == [2]


def test_instance_centres_and_offset_loss():
    rng = np.random.default_rng(0)
    n = 300
    xyz = rng.normal(0, 5, (n, 3)).astype(np.float32)
    labels = rng.integers(0, 5, n)
    instance = rng.integers(0, 4, n)
    offsets = np.array([100, 300])
    centres, mask = instance_centres(torch.from_numpy(xyz), torch.from_numpy(labels), torch.from_numpy(instance),
                                     torch.from_numpy(offsets), THINGS)
    cloud = np.repeat([0, 1], [100, 200])
    for i in range(n):  # the mean of the points of the same cloud, class and instance
        if labels[i] in THINGS and instance[i] > 0:
            same = (cloud == cloud[i]) & (labels == labels[i]) & (instance == instance[i])
            np.testing.assert_allclose(centres[i].numpy(), xyz[same].mean(0), atol=1e-5)
        else:
            assert not mask[i]
    true_offsets = centres - torch.from_numpy(xyz)
    total, count = offset_l1_sum(true_offsets, torch.from_numpy(xyz), torch.from_numpy(labels),
                                 torch.from_numpy(instance), torch.from_numpy(offsets), THINGS)
    assert float(total) == pytest.approx(0.0, abs=1e-3) and int(count) == int(mask.sum())
    shifted = true_offsets + torch.tensor([0.5, -0.25, 0.0])
    total, count = offset_l1_sum(shifted, torch.from_numpy(xyz), torch.from_numpy(labels),
                                 torch.from_numpy(instance), torch.from_numpy(offsets), THINGS)
    assert float(total) / float(count) == pytest.approx(0.75, rel=1e-5)


def test_panoptic_minkunet_forward(one_thread):
    torch.manual_seed(0)
    model = PanopticMinkUNet(6, 4, voxel_size=0.5, layers=[1] * 8, width=0.25, things=THINGS).eval()
    xyz = torch.rand(500, 3) * 8
    feats = torch.cat([xyz, torch.rand(500, 1)], 1)
    offsets = torch.tensor([200, 500])
    logits, point_offsets = model.forward_panoptic(xyz, feats, offsets)
    assert logits.shape == (500, 6) and point_offsets.shape == (500, 3)
    torch.testing.assert_close(logits, model.forward_ragged(xyz, feats, offsets))
    # points sharing a voxel vote for one centre
    centre = xyz + point_offsets
    voxel = torch.floor(xyz[:200] / 0.5).long()
    _, inverse = torch.unique(voxel, dim=0, return_inverse=True)
    for v in torch.unique(inverse)[:20]:
        rows = centre[:200][inverse == v]
        assert torch.allclose(rows, rows[0].expand_as(rows), atol=1e-5)
    # the head learns: its gradient is not zero
    model.train()
    _, point_offsets = model.forward_panoptic(xyz, feats, offsets)
    point_offsets.abs().sum().backward()
    assert model.offset_head[0].weight.grad.abs().sum() > 0
    inst = model.instances(xyz, point_offsets.detach(), logits.argmax(1), offsets)
    assert inst.shape == (500,) and inst.dtype == torch.int64


class Oracle(torch.nn.Module):
    """A 'model' answering with the ground truth: one-hot logits and exact centre offsets."""

    def __init__(self, labels, offsets_true, things, cell):
        super().__init__()
        self.labels, self.offsets_true = labels, offsets_true
        self.num_classes, self.things, self.cluster_size = 20, tuple(things), cell

    def forward_panoptic(self, xyz, feats, offsets):
        return torch.nn.functional.one_hot(self.labels, 20).float(), self.offsets_true

    def instances(self, xyz, point_offsets, semantic, offsets):
        return cluster_centres(xyz + point_offsets, semantic, offsets, self.things, self.cluster_size)


def test_oracle_offsets_give_near_perfect_pq():
    """Exact centres on a synthetic scan: clustering recovers the instances (checked by PQ
    against the scan's exact instance ids)."""
    from pcseg.engine.panoptic import predict_panoptic
    from pcseg.io import LabelMap
    from pcseg.metrics import PanopticQuality, thing_classes
    from pcseg.synth import lidar_scan

    lm = LabelMap.builtin("semantickitti")
    cloud = lidar_scan(seed=3)
    labels = torch.from_numpy(lm.to_train(cloud.labels))
    instance = torch.from_numpy(cloud.instance)
    xyz = torch.from_numpy(cloud.xyz)
    offsets = torch.tensor([len(xyz)])
    things = thing_classes(lm)
    centres, _ = instance_centres(xyz, labels, instance, offsets, things)
    oracle = Oracle(labels, centres - xyz, things, 0.1)  # racks of bicycles stand ~1 m apart
    semantic, pred_inst = predict_panoptic(oracle, xyz, xyz, offsets, (0,))
    assert torch.equal(semantic, labels)
    pq = PanopticQuality(20, 0, 50, things).update(semantic, pred_inst, labels, instance)
    s = pq.summary()
    present = [c for c in things if s["tp"][c] + s["fn"][c] > 0]
    assert present and all(s["pq_class"][c] > 0.99 for c in present)
    # and offsets of zero (every point its own centre) split the objects into many pieces
    semantic, pred_inst = predict_panoptic(Oracle(labels, torch.zeros_like(xyz), things, 0.05), xyz, xyz, offsets, (0,))
    worse = PanopticQuality(20, 0, 50, things).update(semantic, pred_inst, labels, instance).summary()
    assert worse["pq_things"] < s["pq_things"]
