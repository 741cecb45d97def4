"""Regenerate the bundled sample scan ``pcseg/data/sample_scan.{bin,label}``.

``python -m pcseg.synth.sample [OUT_DIR]`` writes the files (default: the package's data folder).
One HDL-64 scan of the synthetic street drawn from ``SAMPLE_SEED``: float32 x, y, z, intensity
records and uint32 labels (SemanticKITTI raw id | instance id << 16), about 1.5 MB together.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pcseg.resources import package_file

SAMPLE_SEED = 34  # a street with all 18 classes and ~76k points (files about 1.5 MB)
SAMPLE_SENSOR = "hdl64"
DATA_DIR = package_file("data")


def sample_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(points float32 (N, 4) x, y, z, intensity; labels uint32 (N,)) of the sample scan."""
    from pcseg.synth.lidar import lidar_scan

    cloud = lidar_scan(SAMPLE_SEED, sensor=SAMPLE_SENSOR)
    points = np.concatenate([cloud.xyz, cloud.intensity[:, None]], axis=1).astype("<f4")
    labels = (cloud.labels.astype(np.uint32) & 0xFFFF) | (cloud.instance.astype(np.uint32) << 16)
    return points, labels.astype("<u4")


def write_sample(out_dir=DATA_DIR) -> tuple[Path, Path]:
    """Write ``sample_scan.bin`` and ``sample_scan.label`` into ``out_dir``; returns their paths."""
    from pcseg.atomic import atomic_write_bytes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    points, labels = sample_arrays()
    bin_path, label_path = out / "sample_scan.bin", out / "sample_scan.label"
    atomic_write_bytes(bin_path, points.tobytes())
    atomic_write_bytes(label_path, labels.tobytes())
    return bin_path, label_path


if __name__ == "__main__":
    paths = write_sample(sys.argv[1] if len(sys.argv) > 1 else DATA_DIR)
    print("wrote", *paths)
