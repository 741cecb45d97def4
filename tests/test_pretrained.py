"""The bundled checkpoints: small, self-describing, and they really segment."""

import numpy as np
import pytest
import torch

from pcseg.engine.checkpoint import export_for_inference, load_checkpoint
from pcseg.engine.segmenter import Segmenter
from pcseg.metrics import ConfusionMatrix
from pcseg.pretrained import BUNDLED, checkpoint_path

pytestmark = pytest.mark.usefixtures("one_thread")
# the vehicle-LiDAR models (SemanticKITTI classes); the airborne one: test_pretrained_airborne.py
VEHICLE = sorted(name for name in BUNDLED if name != "airborne")


@pytest.mark.parametrize("name", VEHICLE)
def test_bundled_checkpoint_is_small_and_self_describing(name):
    path = checkpoint_path(name)
    assert path.stat().st_size < 20 * 2**20
    payload = load_checkpoint(path)
    assert payload["label_map"]["name"] == "semantickitti"
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
    # about 1/19 mIoU; the bundled models measure about 0.4 on held-out scans
    majority = np.bincount(target, minlength=seg.num_classes).argmax()
    baseline = ConfusionMatrix(seg.num_classes, seg.label_map.ignore_index).update(np.full_like(target, majority), target)
    assert cm.miou() > 0.25 > 3 * baseline.miou()
    assert cm.accuracy() > 0.6


def test_export_for_inference_keeps_the_labels(tmp_path):
    from pcseg.synth import lidar_scan

    src = checkpoint_path("pointnet2")
    dst = export_for_inference(src, tmp_path / "small.pt")
    cloud = lidar_scan(5)
    np.testing.assert_array_equal(Segmenter.from_checkpoint(src)(cloud), Segmenter.from_checkpoint(dst)(cloud))
    a, b = load_checkpoint(src)["model"], load_checkpoint(dst)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
