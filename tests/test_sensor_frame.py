"""Scans stored away from their sensor moved back into the sensor frame (pcseg.datasets.sensor_frame).

The truth is a known translation applied to scans whose sensor is at the origin (generated scans,
where the generator puts it there exactly, and the real SemanticKITTI scan, stored in its sensor
frame): the estimated offset must undo it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pcseg.datasets.base import ScanDataset
from pcseg.datasets.sensor_frame import estimate_sensor_xy, sensor_frame_offset, to_sensor_frame
from pcseg.errors import ConfigError
from pcseg.io import LabelMap, read_points
from pcseg.synth import lidar_scan

SHIFTS = [(37.0, -120.0, 55.0), (-250.0, 18.0, -3.0), (6.5, 4.0, 0.0)]


def shifted(cloud, shift):
    return dataclasses.replace(cloud, xyz=(cloud.xyz.astype(np.float64) + shift).astype(np.float32))


@pytest.mark.parametrize("seed", [3, 41, 77])
def test_generated_scans_in_a_map_frame_are_recovered(seed):
    cloud = lidar_scan(seed, layouts=("urban", "rural", "highway"))
    assert not sensor_frame_offset(cloud.xyz).any()  # already in the sensor frame: untouched
    assert to_sensor_frame(cloud) is cloud
    for shift in SHIFTS:
        offset = sensor_frame_offset(shifted(cloud, shift).xyz)
        error = offset + np.asarray(shift)
        assert np.hypot(error[0], error[1]) < 1.5, (shift, offset)
        # the ground goes to 1.73 m below the origin; the generator's sensor stands 1.6-2.0 m up
        assert abs(error[2]) < 0.6, (shift, offset)


def test_real_scan_in_a_map_frame_is_recovered(kitti_scan):
    cloud = read_points(kitti_scan[0])
    xy = estimate_sensor_xy(cloud.xyz)
    assert np.hypot(*xy) < 1.5
    assert not sensor_frame_offset(cloud.xyz).any()
    for shift in SHIFTS:
        moved = to_sensor_frame(shifted(cloud, shift))
        error = moved.xyz.astype(np.float64).mean(axis=0) - cloud.xyz.astype(np.float64).mean(axis=0)
        assert np.hypot(error[0], error[1]) < 1.5 and abs(error[2]) < 0.6, (shift, error)


class _OneScan(ScanDataset):
    def __init__(self, cloud, **kwargs):
        super().__init__(LabelMap.builtin("semantickitti"), ["xyz"], **kwargs)
        self.items, self._cloud = ["scan"], cloud

    def load_cloud(self, index):
        return self._cloud


def test_dataset_recenters_only_when_asked():
    cloud = lidar_scan(5)
    cloud = dataclasses.replace(cloud, labels=LabelMap.builtin("semantickitti").to_train(cloud.labels))
    far = shifted(cloud, (80.0, 60.0, 0.0))
    np.testing.assert_array_equal(_OneScan(far).cloud(0).xyz, far.xyz)
    back = _OneScan(far, recenter=True).cloud(0)
    assert np.abs(back.xyz.mean(axis=0) - cloud.xyz.mean(axis=0))[:2].max() < 1.5
    np.testing.assert_array_equal(back.labels, cloud.labels)


def test_segmenter_recenter_labels_a_map_frame_scan_like_the_sensor_frame_one():
    from pcseg.engine.segmenter import Segmenter
    from pcseg.pretrained import checkpoint_path

    cloud = lidar_scan(12)
    far = shifted(cloud, (0.0, -100.0, 0.0))
    plain = Segmenter.from_checkpoint(checkpoint_path("outdoor"), threads=1, recenter=False)
    reference = plain(cloud)
    recentred = Segmenter.from_checkpoint(checkpoint_path("outdoor"), threads=1, recenter=True)(far)
    assert np.mean(recentred == reference) > 0.85
    # the translation is what the option removes: without it the labels change a lot
    assert np.mean(plain(far) == reference) < np.mean(recentred == reference) - 0.03


def test_config_rejects_a_non_boolean_recenter(tmp_path):
    from pcseg.engine.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("dataset: {name: synthetic, train_split: 2, recenter: sometimes}\nmodel: {name: MinkUNet}\n")
    with pytest.raises(ConfigError, match="dataset.recenter"):
        load_config(path)
