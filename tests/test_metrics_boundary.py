"""Boundary mask and boundary mIoU against brute-force pairwise distances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from pcseg.errors import PcsegValueError
from pcseg.metrics import ConfusionMatrix, boundary_confusion, boundary_mask


def brute_force_boundary(xyz, labels, radius, ignore):
    d = cdist(xyz, xyz)
    near = d <= radius
    labeled = ~np.isin(labels, ignore)
    differ = labels[:, None] != labels[None, :]
    return labeled & (near & differ & labeled[None, :]).any(axis=1)


@pytest.mark.parametrize("seed", [0, 1])
def test_mask_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    xyz = rng.random((600, 3)) * 4
    labels = 1 + (xyz[:, 0] > 2).astype(np.int64) + 2 * (xyz[:, 1] > 3)  # four regions, ids 1..4
    labels[rng.random(600) < 0.05] = 0  # some unlabeled points, ignored
    for radius in (0.3, 0.6):
        got = boundary_mask(xyz, labels, radius, ignore_index=[0])
        want = brute_force_boundary(xyz, labels, radius, [0])
        np.testing.assert_array_equal(got, want)
        assert 0 < got.sum() < len(got)


def test_boundary_miou_by_hand():
    # a line of points 1 m apart: classes 1 1 1 2 2 2; with radius 1.5 only the two points at
    # the change (x = 2 and x = 3) are boundary points
    xyz = np.stack([np.arange(6.0), np.zeros(6), np.zeros(6)], axis=1)
    target = np.array([1, 1, 1, 2, 2, 2])
    pred = np.array([1, 1, 2, 2, 2, 2])  # the class-1 point at the change is wrong
    cm = ConfusionMatrix(3, ignore_index=0)
    np.testing.assert_array_equal(boundary_mask(xyz, target, 1.5, 0), [0, 0, 1, 1, 0, 0])
    # boundary points: target (1, 2), pred (2, 2): IoU class 1 = 0, class 2 = 1/2
    assert cm.boundary_miou(xyz, pred, target, 1.5) == pytest.approx(0.25)
    assert cm.matrix.sum() == 0  # the caller's counts are untouched
    bc = boundary_confusion(xyz, pred, target, 1.5, like=cm)
    np.testing.assert_array_equal(bc.matrix, [[0, 0, 0], [0, 0, 1], [0, 0, 1]])
    assert np.isnan(cm.boundary_miou(xyz, pred, np.ones(6, int), 1.5))  # one class: no boundary


def test_real_scan_boundary(kitti_scan):
    _, label_path = kitti_scan
    bin_path = label_path.parents[1] / "velodyne" / "000000.bin"
    xyz = np.fromfile(bin_path, dtype=np.float32).reshape(-1, 4)[:, :3]
    raw = np.fromfile(label_path, dtype=np.uint32) & 0xFFFF
    # compare with a brute force on a crop near the sensor (where classes meet)
    crop = np.flatnonzero(np.linalg.norm(xyz[:, :2], axis=1) < 6)[:3000]
    got = boundary_mask(xyz[crop], raw[crop].astype(np.int64), 0.3, ignore_index=[0])
    want = brute_force_boundary(xyz[crop].astype(np.float64), raw[crop].astype(np.int64), 0.3, [0])
    np.testing.assert_array_equal(got, want)


def test_bad_input():
    with pytest.raises(PcsegValueError, match="radius"):
        boundary_mask(np.zeros((3, 3)), np.zeros(3, int), 0.0)
    with pytest.raises(PcsegValueError, match=r"\(N, 3\)"):
        boundary_mask(np.zeros((3, 2)), np.zeros(3, int), 1.0)
    with pytest.raises(PcsegValueError, match="rows"):
        boundary_mask(np.zeros((3, 3)), np.zeros(4, int), 1.0)
