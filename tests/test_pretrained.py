"""The bundled checkpoints: small, self-describing, and they really segment."""

import numpy as np
import pytest
import torch

from pcseg.engine.checkpoint import export_for_inference, load_checkpoint
from pcseg.engine.segmenter import Segmenter
from pcseg.metrics import ConfusionMatrix
from pcseg.pretrained import bundled_for, checkpoint_path

pytestmark = pytest.mark.usefixtures("one_thread")
# the vehicle-LiDAR models (SemanticKITTI classes); the airborne one: test_pretrained_airborne.py,
# the indoor one: test_pretrained_indoor.py
VEHICLE = sorted(bundled_for("street"))


@pytest.mark.parametrize("name", VEHICLE)
def test_bundled_checkpoint_is_small_and_self_describing(name):
    path = checkpoint_path(name)
    assert path.stat().st_size < 20 * 2**20
    payload = load_checkpoint(path)
    assert payload["label_map"]["name"] == "semantickitti"
    if name in ("outdoor", "realtime"):  # trained on every real frame: no held-out split, figures in the cards
        assert payload["config"]["dataset"]["features"] == ["xyz"]
    else:
        assert 0 < payload["metrics"]["miou"] <= 1
    assert "optimizer" not in payload  # exported for inference


@pytest.mark.parametrize("name", VEHICLE)
def test_bundled_model_segments_a_held_out_synthetic_scan(name):
    from pcseg.demo import HELD_OUT_SEED
    from pcseg.synth import lidar_scan

    seg = Segmenter.from_checkpoint(checkpoint_path(name))
    cloud = lidar_scan(HELD_OUT_SEED + 7)
    pred = seg(cloud)
    assert pred.shape == (len(cloud),)
    target = seg.label_map.to_train(cloud.labels)
    cm = ConfusionMatrix(seg.num_classes, seg.label_map.ignore_index).update(pred, target)
    # a trained model, not a constant: always predicting the majority class (road) gives
    # about 1/19 mIoU; the bundled models measure about 0.4 on held-out scans, the short-trained
    # real-time model about 0.2
    floor = 0.15 if name == "realtime" else 0.25
    majority = np.bincount(target, minlength=seg.num_classes).argmax()
    baseline = ConfusionMatrix(seg.num_classes, seg.label_map.ignore_index).update(np.full_like(target, majority), target)
    assert cm.miou() > floor > 2.5 * baseline.miou()
    assert cm.accuracy() > (0.5 if name == "realtime" else 0.6)


def test_export_for_inference_keeps_the_labels(tmp_path):
    from pcseg.synth import lidar_scan

    src = checkpoint_path("pointnet2")
    dst = export_for_inference(src, tmp_path / "small.pt")
    cloud = lidar_scan(5)
    np.testing.assert_array_equal(Segmenter.from_checkpoint(src)(cloud), Segmenter.from_checkpoint(dst)(cloud))
    a, b = load_checkpoint(src)["model"], load_checkpoint(dst)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_outdoor_model_labels_real_frames_with_and_without_intensity(kitti_scan, shared_data):
    """The default model on real SemanticKITTI frames. They are frames it was trained on, so this
    checks that the shipped weights and their input handling work on real scans, not how well it
    generalises (its held-out figures come from benchmarks/loo_outdoor.py and are in the card).
    It reads xyz only: a scan's intensity changes nothing, npy frames without it work as they are."""
    from pcseg.io import PointCloud

    seg = Segmenter.from_checkpoint(checkpoint_path("outdoor"))
    cm, iou, baseline, _ = _scores_on_real_scan(seg, kitti_scan, with_intensity=True)
    # far above a constant answer, and the large classes are separated
    assert cm.miou() > 3 * baseline.miou()
    assert iou["vegetation"] > 0.7 and iou["car"] > 0.5 and iou["road"] > 0.4
    assert cm.accuracy() > 0.6

    points = np.load(shared_data / "semantickitti-npy" / "demo_points_000750.npy")
    target = np.load(shared_data / "semantickitti-npy" / "demo_labels_000750.npy").reshape(-1)
    pred = seg(PointCloud(xyz=points, source="npy frame"))
    cm = ConfusionMatrix(seg.num_classes, seg.label_map.ignore_index).update(pred, target)
    iou = dict(zip(seg.label_map.class_names, cm.iou()))
    assert cm.accuracy() > 0.75 and iou["building"] > 0.6 and iou["road"] > 0.6


def test_realtime_model_labels_a_real_scan(kitti_scan):
    """The bundled real-time model (FastVoxelNet) on the real SemanticKITTI scan, xyz only like the
    outdoor model. It trained on this frame, so this checks the shipped weights and input handling
    on a real 123k-point scan, not generalisation (held-out figures: loo_outdoor.py --recipe
    realtime, in docs/models.md); its speed is in benchmarks/bench_realtime.py."""
    from pcseg.models import FastVoxelNet

    seg = Segmenter.from_checkpoint(checkpoint_path("realtime"))
    assert isinstance(seg.model, FastVoxelNet) and seg.features == ["xyz"]
    cm, iou, baseline, target = _scores_on_real_scan(seg, kitti_scan)
    majority = np.bincount(target, minlength=seg.num_classes).argmax()
    assert cm.miou() > 3 * baseline.miou()
    assert iou["vegetation"] > 0.6 and iou["car"] > 0.4
    # the majority class (terrain) is 27 % of the labelled points
    assert cm.accuracy() > 0.5 > 1.5 * (target == majority).sum() / (target != 0).sum()


def _scores_on_real_scan(seg, kitti_scan, with_intensity=False):
    """(confusion matrix, IoU per class name, majority-class baseline matrix, train-id target) of
    ``seg`` on the real scan; also checks that the labels do not depend on the intensity field."""
    from pcseg.io import PointCloud, read_labels, read_points

    velodyne, labels = kitti_scan
    cloud = read_points(velodyne)
    assert (cloud.intensity is not None) or not with_intensity
    pred = seg(cloud)
    assert pred.shape == (len(cloud),)
    np.testing.assert_array_equal(seg(PointCloud(xyz=cloud.xyz.copy(), source="xyz only")), pred)
    target = seg.label_map.to_train(read_labels(labels))
    cm = ConfusionMatrix(seg.num_classes, seg.label_map.ignore_index).update(pred, target)
    majority = np.bincount(target, minlength=seg.num_classes).argmax()
    baseline = ConfusionMatrix(seg.num_classes, seg.label_map.ignore_index).update(np.full_like(target, majority), target)
    return cm, dict(zip(seg.label_map.class_names, cm.iou())), baseline, target
