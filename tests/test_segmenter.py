"""Segmenter: a checkpoint alone labels every point of the real SemanticKITTI scan; chunking,
TTA and input forms agree with independent references."""

import numpy as np
import pytest
import torch

from pcseg.engine.segmenter import Segmenter
from pcseg.engine.trainer import Trainer
from pcseg.errors import CheckpointError, PcsegValueError
from pcseg.io import LabelMap, PointCloud, read_labels, read_points
from test_engine_support import toy_config, write_toy_kitti


def _checkpoint(tmp_path, features=("xyz", "intensity"), context=True):
    root = write_toy_kitti(tmp_path / "data", sequences=("00", "08"), scans=2, n=300)
    config = toy_config(root, tmp_path / "run", epochs=1, batch_size=1)
    config["dataset"]["features"] = list(features)
    config["model"]["context"] = context
    Trainer(config, log=lambda *a: None).fit()
    return tmp_path / "run" / "last.pt"


def test_labels_every_point_of_the_real_scan(tmp_path, kitti_scan):
    bin_path, label_path = kitti_scan
    seg = Segmenter.from_checkpoint(_checkpoint(tmp_path), device="cpu")
    cloud = read_points(bin_path)
    labels = seg(cloud)
    assert labels.shape == (123389,) and labels.dtype == np.int64
    assert labels.min() >= 1 and labels.max() < 20  # never the ignored train id 0
    proba = seg.predict_proba(cloud)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert (proba[:, 0] == 0).all()
    np.testing.assert_array_equal(labels, proba.argmax(1))
    assert seg.label_map == LabelMap.builtin("semantickitti")
    raw = seg.label_map.to_raw(labels)
    assert set(np.unique(raw)) <= set(seg.label_map.learning_map_inv.values())
    # an (N, 4) array of x, y, z, intensity gives the same labels as the PointCloud
    array = np.fromfile(bin_path, dtype=np.float32).reshape(-1, 4)
    np.testing.assert_array_equal(seg(array), labels)
    assert len(read_labels(label_path)) == len(labels)


def test_chunked_inference_equals_one_pass_for_a_per_point_model(tmp_path):
    seg = Segmenter.from_checkpoint(_checkpoint(tmp_path, context=False))
    rng = np.random.default_rng(0)
    cloud = PointCloud(xyz=rng.uniform(-30, 30, (5000, 3)).astype(np.float32),
                       intensity=rng.random(5000).astype(np.float32))
    whole = seg.predict_proba(cloud)
    seg.max_points = 700
    chunks = list(seg._chunks(cloud.xyz))
    assert len(chunks) > 7
    assert np.array_equal(np.sort(np.concatenate([core for core, _ in chunks])), np.arange(5000))
    np.testing.assert_allclose(seg.predict_proba(cloud), whole, atol=1e-6)
    # independent reference: the network applied to every point directly
    feats = torch.from_numpy(np.column_stack([cloud.xyz, cloud.intensity]))
    with torch.no_grad():
        logits = seg.model.forward_ragged(feats[:, :3], feats, torch.tensor([5000]))
    logits[:, 0] = -torch.inf
    np.testing.assert_allclose(whole, torch.softmax(logits, 1).numpy(), atol=1e-6)


def test_sampled_inference_equals_one_pass_for_a_per_point_model(tmp_path):
    # point models trained on num_points samples are run in pieces of that size; for a model
    # whose outputs depend on each point alone the pieces must not change anything
    seg = Segmenter.from_checkpoint(_checkpoint(tmp_path, context=False))
    rng = np.random.default_rng(2)
    cloud = PointCloud(xyz=rng.uniform(-30, 30, (3000, 3)).astype(np.float32),
                       intensity=rng.random(3000).astype(np.float32))
    whole = seg.predict_proba(cloud)
    seg.num_points = 256
    np.testing.assert_allclose(seg.predict_proba(cloud), whole, atol=1e-5)


def test_tta_is_exact_for_rotation_invariant_features(tmp_path):
    seg = Segmenter.from_checkpoint(_checkpoint(tmp_path, features=("intensity", "range")))
    rng = np.random.default_rng(1)
    cloud = PointCloud(xyz=rng.normal(0, 10, (800, 3)).astype(np.float32), intensity=rng.random(800).astype(np.float32))
    plain = seg.predict_proba(cloud)
    seg.tta = 4
    np.testing.assert_allclose(seg.predict_proba(cloud), plain, atol=1e-5)


def test_bad_inputs(tmp_path):
    ckpt = _checkpoint(tmp_path)
    seg = Segmenter.from_checkpoint(ckpt)
    with pytest.raises(PcsegValueError, match="empty"):
        seg(np.zeros((0, 4), np.float32))
    with pytest.raises(PcsegValueError, match="intensity"):
        seg(PointCloud(xyz=np.zeros((5, 3), np.float32)))
    with pytest.raises(PcsegValueError, match="shape"):
        seg(np.zeros((5, 2), np.float32))
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="foreign.pt"):
        Segmenter.from_checkpoint(tmp_path / "foreign.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(ckpt.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        Segmenter.from_checkpoint(truncated)


def test_voxel_model_labels_and_proba_match_the_per_point_reference(kitti_scan, one_thread):
    # MinkUNet's inference takes softmax / argmax per voxel (forward_voxels); the reference is
    # the per-point logits of forward_ragged, masked and softmaxed over all 123k points
    from pcseg.pretrained import checkpoint_path

    seg = Segmenter.from_checkpoint(checkpoint_path("minkunet"))
    cloud = read_points(kitti_scan[0])
    xyz = torch.from_numpy(cloud.xyz)
    feats = torch.from_numpy(np.column_stack([cloud.xyz, cloud.intensity]))
    with torch.no_grad():
        logits = seg.model.forward_ragged(xyz, feats, torch.tensor([len(cloud)]))
        voxel_logits, inverse = seg.model.forward_voxels(xyz, feats, torch.tensor([len(cloud)]))
    assert voxel_logits.shape[0] < len(cloud) // 2  # 0.4 m voxels: far fewer rows than points
    torch.testing.assert_close(voxel_logits[inverse], logits, rtol=0, atol=0)
    logits[:, 0] = -torch.inf  # SemanticKITTI's ignored class
    expected = torch.softmax(logits, 1).numpy()
    proba = seg.predict_proba(cloud)
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    labels = seg(cloud)
    np.testing.assert_array_equal(labels, logits.argmax(1).numpy())
    np.testing.assert_array_equal(labels, proba.argmax(1))
    seg.max_points = 50_000  # chunked: every point still labelled, by a chunk with context
    chunked = seg(cloud)
    assert chunked.shape == labels.shape and (chunked >= 1).all()
    assert (chunked == labels).mean() > 0.95
