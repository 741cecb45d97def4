"""Datasets: layouts load with the right labels, augmentations keep their invariants, batches
follow the ragged-offsets convention, the sampler splits epochs across processes."""

import numpy as np
import pytest
import torch

from pcseg.datasets import (EpochSampler, FolderDataset, S3DISDataset, SemanticKITTIDataset, collate_ragged)
from pcseg.datasets import transforms as T
from pcseg.errors import PcsegFileNotFoundError, PcsegValueError
from pcseg.io import LabelMap
from test_engine_support import toy_scan, write_toy_kitti

KITTI = LabelMap.builtin("semantickitti")


def test_semantickitti_layout_maps_labels(tmp_path):
    root = write_toy_kitti(tmp_path, sequences=("00", "08"), scans=2, n=300)
    ds = SemanticKITTIDataset(root, ["00"], KITTI, ["xyz", "intensity"])
    assert len(ds) == 2
    sample = ds[1]
    points, raw = toy_scan(1, 300)
    np.testing.assert_array_equal(sample["xyz"], points[:, :3])
    np.testing.assert_array_equal(sample["feats"][:, 3], points[:, 3])
    # official learning map: road 40 -> 9, car 10 -> 1, building 50 -> 13, vegetation 70 -> 15, 0 -> 0
    expected = np.select([raw == 40, raw == 10, raw == 50, raw == 70], [9, 1, 13, 15], 0)
    np.testing.assert_array_equal(sample["labels"], expected)
    assert SemanticKITTIDataset(root, "val", KITTI, ["xyz"]).sequences == ["08"]
    with pytest.raises(PcsegFileNotFoundError, match="sequences/03"):
        SemanticKITTIDataset(root, [3], KITTI, ["xyz"])
    with pytest.raises(PcsegFileNotFoundError, match="no sequences"):
        SemanticKITTIDataset(tmp_path / "missing", [0], KITTI, ["xyz"])


def test_training_sample_is_deterministic_and_sampled(tmp_path):
    root = write_toy_kitti(tmp_path, sequences=("00",), scans=3, n=400)
    aug = {"rotate_z": True, "scale": [0.9, 1.1], "flip": True, "jitter": 0.01, "dropout": 0.1,
           "scan_mix": 0.5, "scan_mix_bands": 4}
    ds = SemanticKITTIDataset(root, [0], KITTI, ["xyz", "intensity"], training=True, num_points=256, augment=aug, augment_seed=5)
    a, b, c = ds[(2, 1)], ds[(2, 1)], ds[(3, 1)]
    np.testing.assert_array_equal(a["xyz"], b["xyz"])
    assert a["xyz"].shape == (256, 3) and a["feats"].shape == (256, 4) and a["labels"].shape == (256,)
    assert not np.array_equal(a["xyz"], c["xyz"])
    # the xyz feature columns are the augmented coordinates
    np.testing.assert_array_equal(a["feats"][:, :3], a["xyz"])


def test_rotation_flip_scale_invariants():
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(100, 3)).astype(np.float32)
    rotated = T.rotate_z(xyz, rng)
    np.testing.assert_allclose(np.linalg.norm(rotated[:, :2], axis=1), np.linalg.norm(xyz[:, :2], axis=1), rtol=1e-5)
    np.testing.assert_array_equal(rotated[:, 2], xyz[:, 2])
    flipped = T.random_flip(xyz, rng)
    np.testing.assert_array_equal(np.abs(flipped), np.abs(xyz))
    scaled = T.random_scale(xyz, 2.0, 2.0, rng)
    np.testing.assert_allclose(scaled, 2 * xyz)
    assert np.abs(T.jitter(xyz, 0.01, rng) - xyz).max() <= 0.03 + 1e-6
    keep = T.dropout_index(100, 0.25, rng)
    assert len(keep) == 75 and len(np.unique(keep)) == 75


def test_tilt_is_a_rotation_whose_ground_normal_stays_within_the_bound():
    rng = np.random.default_rng(4)
    xyz = rng.uniform(-30, 30, (500, 3)).astype(np.float32)
    xyz[:, 2] = -1.73  # a flat ground plane
    angles = []
    for _ in range(50):
        out = T.random_tilt(xyz, 3.0, rng)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(xyz, axis=1), rtol=1e-5)  # rigid
        # the plane's normal, fitted with an SVD (independent of the rotation's construction)
        centred = out - out.mean(axis=0)
        normal = np.linalg.svd(centred.astype(np.float64))[2][-1]
        angles.append(np.degrees(np.arccos(abs(normal[2]))))
    assert max(angles) <= 3.0 + 1e-3 and max(angles) > 1.5


def test_block_crop_keeps_a_square_around_a_point():
    rng = np.random.default_rng(3)
    xyz = rng.uniform(0, 10, size=(3000, 3)).astype(np.float32)
    keep = T.block_crop(xyz, 2.0, rng)
    block = xyz[keep]
    assert 0 < len(keep) < 3000
    assert (np.ptp(block[:, 0]) <= 2.0) and (np.ptp(block[:, 1]) <= 2.0)
    # every point inside the block's bounds was kept (an independent box test)
    lo, hi = block[:, :2].min(0), block[:, :2].max(0)
    inside = np.all((xyz[:, :2] >= lo) & (xyz[:, :2] <= hi), axis=1)
    assert inside.sum() >= len(keep)


def test_voxel_subsample_keeps_one_point_per_voxel():
    rng = np.random.default_rng(1)
    xyz = rng.uniform(0, 2, size=(2000, 3)).astype(np.float32)
    keep = T.voxel_subsample(xyz, 0.5, rng)
    voxels = np.floor(xyz / 0.5).astype(int)
    assert len(keep) == len(np.unique(voxels, axis=0))
    assert len(np.unique(voxels[keep], axis=0)) == len(keep)


def test_laser_mix_takes_alternate_bands():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(500, 3)).astype(np.float32) * [10, 10, 1]
    b = rng.normal(size=(500, 3)).astype(np.float32) * [10, 10, 1]
    keep_a, keep_b = T.laser_mix(a, b, 4, rng)
    pitch = lambda p: np.arctan2(p[:, 2], np.linalg.norm(p[:, :2], axis=1))  # noqa: E731
    lo = min(pitch(a).min(), pitch(b).min())
    hi = max(pitch(a).max(), pitch(b).max()) + 1e-6
    band = lambda p: np.minimum(((pitch(p) - lo) / (hi - lo) * 4).astype(int), 3)  # noqa: E731
    parity_a = np.unique(band(a)[keep_a] % 2)
    parity_b = np.unique(band(b)[keep_b] % 2)
    assert len(parity_a) == 1 and len(parity_b) == 1 and parity_a[0] != parity_b[0]
    assert len(keep_a) + len(keep_b) > 0


def test_collate_offsets():
    samples = [{"xyz": np.zeros((n, 3), np.float32), "feats": np.zeros((n, 2), np.float32),
                "labels": np.arange(n), "index": np.arange(n), "scan": i} for i, n in enumerate([3, 5])]
    batch = collate_ragged(samples)
    assert batch["offsets"].tolist() == [3, 8] and batch["xyz"].shape == (8, 3)
    assert batch["offsets"].dtype == torch.int64 and batch["scans"].tolist() == [0, 1]


def test_sampler_ranks_partition_epoch_and_resume():
    full = [i for _, i in EpochSampler(10, seed=4, world_size=1)]
    assert sorted(full) == list(range(10))
    ranks = [[i for _, i in EpochSampler(10, seed=4, rank=r, world_size=2)] for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == list(range(10))
    # step s of two ranks with batch b covers the same scans as step s of one rank with batch 2b
    assert set(ranks[0][:2] + ranks[1][:2]) == set(full[:4])
    sampler = EpochSampler(10, seed=4)
    sampler.set_epoch(0, start=6)
    assert [i for _, i in sampler] == full[6:]
    sampler.set_epoch(1)
    assert [i for _, i in sampler] != full


def test_folder_dataset_on_real_npy_frames(shared_data):
    folder = shared_data / "semantickitti-npy"
    ds = FolderDataset(folder, ["kitti_01_points_*.npy"], KITTI, ["xyz"], label_replace=["_points_", "_labels_"],
                       labels_are_train_ids=True)
    assert len(ds) == 3
    sample = ds[0]
    points = np.load(folder / "kitti_01_points_000000.npy")
    labels = np.load(folder / "kitti_01_labels_000000.npy").reshape(-1)
    np.testing.assert_array_equal(sample["xyz"], points)
    np.testing.assert_array_equal(sample["labels"], labels)
    with pytest.raises(PcsegValueError, match="intensity"):
        FolderDataset(folder, ["kitti_01_points_*.npy"], KITTI, ["xyz", "intensity"],
                      label_replace=["_points_", "_labels_"], labels_are_train_ids=True)[0]


def test_folder_dataset_rejects_labels_beyond_label_map(tmp_path):
    np.save(tmp_path / "a_points.npy", np.zeros((5, 3), np.float32))
    np.save(tmp_path / "a_labels.npy", np.full((5, 1), 25, np.int32))
    ds = FolderDataset(tmp_path, "*_points.npy", KITTI, ["xyz"], label_replace=["_points", "_labels"],
                       labels_are_train_ids=True)
    with pytest.raises(PcsegValueError, match="train id 25"):
        ds[0]


def test_s3dis_rooms_from_annotations(tmp_path):
    room = tmp_path / "Area_5" / "office_1" / "Annotations"
    room.mkdir(parents=True)
    np.savetxt(room / "chair_1.txt", [[1, 2, 3, 255, 0, 0], [1, 2, 4, 255, 0, 0]], fmt="%.3f")
    np.savetxt(room / "floor_1.txt", [[0, 0, 0, 0, 0, 255]], fmt="%.3f")
    np.savetxt(room / "stairs_1.txt", [[5, 5, 5, 0, 255, 0]], fmt="%.3f")
    ds = S3DISDataset(tmp_path, [5], LabelMap.builtin("s3dis"), ["xyz", "rgb"])
    sample = ds[0]
    names = LabelMap.builtin("s3dis").class_names
    assert [names[i] for i in sample["labels"]] == ["chair", "chair", "floor", "clutter"]
    np.testing.assert_allclose(sample["feats"][0, 3:], [1, 0, 0])
    np.testing.assert_allclose(ds.cloud(0).world_xyz()[1], [1, 2, 4])
    with pytest.raises(PcsegFileNotFoundError, match="Area_2"):
        S3DISDataset(tmp_path, [2], LabelMap.builtin("s3dis"), ["xyz"])


def test_worker_processes_give_the_same_batches(tmp_path):
    from torch.utils.data import DataLoader

    from pcseg.datasets import seed_worker

    root = write_toy_kitti(tmp_path, sequences=("00",), scans=4, n=200)
    aug = {"rotate_z": True, "jitter": 0.01, "dropout": 0.2, "scan_mix": 0.5}
    ds = SemanticKITTIDataset(root, [0], KITTI, ["xyz", "intensity"], training=True, augment=aug, augment_seed=1)

    def batches(workers):
        sampler = EpochSampler(len(ds), seed=1)
        sampler.set_epoch(3)
        loader = DataLoader(ds, batch_size=2, sampler=sampler, collate_fn=collate_ragged, num_workers=workers,
                            worker_init_fn=seed_worker, generator=torch.Generator().manual_seed(0))
        return list(loader)

    for a, b in zip(batches(0), batches(2)):
        for key in ("xyz", "feats", "labels", "offsets"):
            assert torch.equal(a[key], b[key]), key
