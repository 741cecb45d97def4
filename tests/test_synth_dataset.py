"""write_dataset: SemanticKITTI layout through pcseg.io's readers, poses, determinism, the CLI."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pcseg.synth.writer import write_dataset


def digest_tree(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, sequences=("00", "07"), scans_per_sequence=3, seed=4, sensor="vlp32", progress=False)
    return root


def test_layout_loads_through_the_readers(dataset):
    from pcseg.io import read_labels, read_points

    for seq in ("00", "07"):
        seq_dir = dataset / "sequences" / seq
        bins = sorted((seq_dir / "velodyne").glob("*.bin"))
        assert [p.name for p in bins] == ["000000.bin", "000001.bin", "000002.bin"]
        for path in bins:
            label_path = seq_dir / "labels" / path.name.replace(".bin", ".label")
            cloud = read_points(path, labels=label_path)
            assert len(cloud) > 10_000 and cloud.intensity is not None
            semantic, instance = read_labels(label_path, return_instance=True)
            np.testing.assert_array_equal(cloud.labels, semantic)
            # the upper 16 bits are instance ids, only on things
            raw = np.fromfile(label_path, dtype="<u4")
            np.testing.assert_array_equal(raw & 0xFFFF, semantic)
            np.testing.assert_array_equal(raw >> 16, instance)
            assert set(np.unique(instance[semantic == 40]).tolist()) <= {0}


def test_poses_and_calib_files(dataset):
    seq_dir = dataset / "sequences" / "00"
    poses = np.loadtxt(seq_dir / "poses.txt").reshape(-1, 3, 4)
    assert len(poses) == 3
    np.testing.assert_allclose(poses[0], np.eye(4)[:3], atol=1e-12)
    for pose in poses:
        np.testing.assert_allclose(pose[:, :3] @ pose[:, :3].T, np.eye(3), atol=1e-9)
    assert np.all(np.diff(poses[:, 0, 3]) > 0.2), "the ego car drives forward"
    calib = dict(line.split(":", 1) for line in (seq_dir / "calib.txt").read_text().splitlines())
    assert set(calib) == {"P0", "P1", "P2", "P3", "Tr"}
    np.testing.assert_allclose(np.array(calib["Tr"].split(), float).reshape(3, 4), np.eye(4)[:3])


def test_consecutive_scans_register_with_their_poses(dataset):
    """Static structure of scan 2 moved by its pose lands on scan 0's structure (scipy kd-tree)."""
    from scipy.spatial import cKDTree

    from pcseg.io import read_points

    seq_dir = dataset / "sequences" / "07"
    poses = np.loadtxt(seq_dir / "poses.txt").reshape(-1, 3, 4)
    clouds = [read_points(seq_dir / "velodyne" / f"{i:06d}.bin", labels=seq_dir / "labels" / f"{i:06d}.label") for i in (0, 2)]
    # thin vertical things (poles, trunks): unlike planes they pin down motion along the road
    static = [c.select(np.isin(c.labels, [80, 71]) & (np.linalg.norm(c.xyz, axis=1) < 40)) for c in clouds]
    assert min(len(s) for s in static) > 20
    moved = static[1].xyz.astype(np.float64) @ poses[2][:, :3].T + poses[2][:, 3]
    dist, _ = cKDTree(static[0].xyz).query(moved)
    assert np.median(dist) < 0.15
    # without the pose the scans do not line up (the test can fail)
    dist_raw, _ = cKDTree(static[0].xyz).query(static[1].xyz)
    assert np.median(dist_raw) > 2 * np.median(dist)


def test_same_seed_gives_byte_identical_files(tmp_path):
    for name in ("a", "b", "c"):
        write_dataset(tmp_path / name, sequences=("03",), scans_per_sequence=2, seed=9 if name != "c" else 10,
                      sensor="vlp16", progress=False)
    a, b, c = (digest_tree(tmp_path / name) for name in ("a", "b", "c"))
    assert len(a) == 7 and a == b
    assert a["sequences/03/velodyne/000001.bin"] != c["sequences/03/velodyne/000001.bin"]


def test_cli_writes_the_layout(tmp_path):
    from pcseg.cli import main

    assert main(["synth", "--out", str(tmp_path), "--sequences", "01", "--scans", "1", "--seed", "2", "--sensor", "vlp16",
                 "--no-progress"]) == 0
    assert (tmp_path / "sequences/01/velodyne/000000.bin").stat().st_size % 16 == 0
    assert (tmp_path / "sequences/01/labels/000000.label").exists()
    assert main(["synth", "--out", str(tmp_path), "--scans", "0"]) == 2


def test_bad_arguments(tmp_path):
    from pcseg.errors import PcsegValueError

    with pytest.raises(PcsegValueError, match="scans_per_sequence"):
        write_dataset(tmp_path, scans_per_sequence=0, progress=False)
    with pytest.raises(PcsegValueError, match="sensor"):
        write_dataset(tmp_path, scans_per_sequence=1, sensor="kinect", progress=False)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(PcsegValueError, match="not a folder"):
        write_dataset(tmp_path / "a_file", scans_per_sequence=1, progress=False)


def test_semantickitti_dataset_reads_the_written_layout(dataset):
    """pcseg's SemanticKITTI dataset loads the synthetic sequences unchanged, all labels real classes."""
    from pcseg.datasets.semantickitti import SemanticKITTIDataset
    from pcseg.io import LabelMap

    data = SemanticKITTIDataset(dataset, ["00", "07"], LabelMap.builtin("semantickitti"), ["xyz", "intensity"])
    assert len(data.items) == 6
    cloud = data.load_cloud(4)
    assert len(cloud) > 10_000 and np.all(cloud.labels > 0)
