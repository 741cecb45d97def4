"""The bundled sample scan is what ``python -m pcseg.synth.sample`` regenerates, and reads back."""

from __future__ import annotations

import numpy as np

from pcseg.synth.sample import DATA_DIR, sample_arrays


def test_bundled_sample_matches_its_generator():
    points, labels = sample_arrays()
    stored_points = np.fromfile(DATA_DIR / "sample_scan.bin", dtype="<f4").reshape(-1, 4)
    stored_labels = np.fromfile(DATA_DIR / "sample_scan.label", dtype="<u4")
    assert len(stored_points) == len(stored_labels)
    if points.shape == stored_points.shape and np.array_equal(points, stored_points):
        np.testing.assert_array_equal(labels, stored_labels)
        return
    # another platform's libm may move a few rays by an ulp; the scan must still be the same scene
    assert abs(len(points) - len(stored_points)) < 0.01 * len(stored_points)
    hist = np.bincount(labels & 0xFFFF, minlength=300)
    stored_hist = np.bincount(stored_labels & 0xFFFF, minlength=300)
    assert np.abs(hist - stored_hist).sum() < 0.01 * len(stored_labels)


def test_sample_reads_through_pcseg_io_with_kitti_classes():
    from pcseg.io import LabelMap, read_points

    cloud = read_points(DATA_DIR / "sample_scan.bin", labels=DATA_DIR / "sample_scan.label")
    assert 50_000 < len(cloud) < 130_000
    assert (DATA_DIR / "sample_scan.bin").stat().st_size + (DATA_DIR / "sample_scan.label").stat().st_size < 2_100_000
    train = LabelMap.builtin("semantickitti").to_train(cloud.labels)
    assert np.all(train > 0) and len(np.unique(train)) >= 12
