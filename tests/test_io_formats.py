"""Readers and writers on synthetic files: every format, every writer's round trip, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcseg.errors import PcsegError, PcsegFileNotFoundError, PcsegValueError, PointCloudFormatError
from pcseg.io import LabelMap, PointCloud, read_points, write_labels, write_points


def _random_cloud(n, seed=0, offset=(0.0, 0.0, 0.0), fields=("intensity", "rgb", "normals", "labels", "instance")):
    rng = np.random.default_rng(seed)
    kwargs = {"xyz": rng.uniform(-50, 50, (n, 3)).astype(np.float32), "offset": np.array(offset)}
    if "intensity" in fields:
        kwargs["intensity"] = rng.uniform(0, 1, n).astype(np.float32)
    if "rgb" in fields:
        kwargs["rgb"] = rng.integers(0, 256, (n, 3)) / 255.0  # exactly representable in 8 bits
    if "normals" in fields:
        normals = rng.normal(size=(n, 3))
        kwargs["normals"] = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    if "labels" in fields:
        kwargs["labels"] = rng.choice([0, 10, 40, 48, 70, 252], n)
    if "instance" in fields:
        kwargs["instance"] = rng.integers(0, 1000, n)
    return PointCloud(**kwargs)


def _assert_same(a: PointCloud, b: PointCloud, fields, atol=1e-6):
    np.testing.assert_allclose(a.world_xyz(), b.world_xyz(), atol=atol, rtol=0)
    for name in fields:
        va, vb = getattr(a, name), getattr(b, name)
        assert vb is not None, f"{name} lost"
        if name in ("labels", "instance"):
            np.testing.assert_array_equal(va, vb)
        else:
            np.testing.assert_allclose(va, vb, atol=1e-6 if name != "rgb" else 0.5 / 255)


# ----------------------------------------------------------------------------- writers' round trips
clouds = st.builds(_random_cloud, n=st.integers(1, 60), seed=st.integers(0, 10_000))


@given(clouds)
@settings(max_examples=25, deadline=None)
def test_npz_round_trip_is_lossless(tmp_path_factory, cloud):
    path = tmp_path_factory.mktemp("npz") / "c.npz"
    write_points(path, cloud)
    back = read_points(path)
    np.testing.assert_array_equal(back.xyz, cloud.xyz)
    np.testing.assert_array_equal(back.rgb, cloud.rgb)
    _assert_same(cloud, back, ["intensity", "normals", "labels", "instance"], atol=0)


@given(clouds)
@settings(max_examples=25, deadline=None)
def test_npy_round_trip(tmp_path_factory, cloud):
    path = tmp_path_factory.mktemp("npy") / "c.npy"
    write_points(path, cloud)
    _assert_same(cloud, read_points(path), ["intensity", "rgb", "normals", "labels", "instance"])


@given(clouds)
@settings(max_examples=10, deadline=None)
def test_ply_round_trip(tmp_path_factory, cloud):
    """Written by pcseg's PLY writer, read back by its PLY reader (Open3D agreement: below)."""
    path = tmp_path_factory.mktemp("ply") / "c.ply"
    write_points(path, cloud)
    _assert_same(cloud, read_points(path), ["intensity", "rgb", "normals", "labels", "instance"])


def test_ascii_ply_and_pcd(tmp_path):
    import open3d as o3d

    cloud = _random_cloud(30, seed=3)
    write_points(tmp_path / "a.ply", cloud, ascii=True)
    assert (tmp_path / "a.ply").read_bytes().startswith(b"ply\nformat ascii 1.0")
    _assert_same(cloud, read_points(tmp_path / "a.ply"), ["intensity", "rgb", "normals", "labels"], atol=1e-5)
    # PCD written by Open3D from the PLY keeps the same points and attributes
    o3d.t.io.write_point_cloud(str(tmp_path / "a.pcd"), o3d.t.io.read_point_cloud(str(tmp_path / "a.ply")))
    _assert_same(cloud, read_points(tmp_path / "a.pcd"), ["rgb", "normals", "labels"], atol=1e-5)


def test_georeferenced_ply_keeps_centimetres(tmp_path):
    world = np.array([[612345.67, 5123456.78, 301.23], [612399.01, 5123401.02, 299.99]])
    cloud = PointCloud(xyz=(world - [612000, 5123000, 0]).astype(np.float32), offset=[612000, 5123000, 0])
    write_points(tmp_path / "geo.ply", cloud)
    assert b"property double x" in (tmp_path / "geo.ply").read_bytes()[:300]
    back = read_points(tmp_path / "geo.ply")
    np.testing.assert_allclose(back.world_xyz(), world, atol=1e-4, rtol=0)
    assert np.abs(back.xyz).max() < 1000  # local coordinates stay small


def test_ply_with_label_map_colours(tmp_path):
    cloud = _random_cloud(20, seed=5, fields=("labels",))
    lm = LabelMap.builtin("semantickitti")
    write_points(tmp_path / "lab.ply", cloud, label_map=lm)
    back = read_points(tmp_path / "lab.ply")
    expected = lm.colors[lm.to_train(cloud.labels)] / 255.0
    np.testing.assert_allclose(back.rgb, expected, atol=1e-6)
    np.testing.assert_array_equal(back.labels, cloud.labels)


def test_bin_round_trip(tmp_path):
    cloud = _random_cloud(50, seed=1, fields=("intensity",))
    write_points(tmp_path / "s.bin", cloud)
    raw = np.fromfile(tmp_path / "s.bin", dtype="<f4").reshape(-1, 4)  # independent decode
    np.testing.assert_array_equal(raw[:, :3], cloud.xyz)
    back = read_points(tmp_path / "s.bin")
    np.testing.assert_array_equal(back.xyz, cloud.xyz)
    np.testing.assert_array_equal(back.intensity, cloud.intensity)


def test_writer_rejects_bad_arguments(tmp_path):
    cloud = _random_cloud(5, fields=())
    with pytest.raises(PcsegValueError, match="unknown suffix"):
        write_points(tmp_path / "c.obj", cloud)
    with pytest.raises(PcsegValueError, match="labels must be integer"):
        write_points(tmp_path / "c.ply", cloud, labels=np.zeros(4, int))
    with pytest.raises(PcsegValueError, match="no labels"):
        write_points(tmp_path / "c.ply", cloud, label_map=LabelMap.builtin("s3dis"))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- readers
def test_bin_layouts(tmp_path):
    rng = np.random.default_rng(0)
    nus = rng.uniform(0, 30, (41, 5)).astype(np.float32)  # nuScenes: x y z intensity ring
    nus.tofile(tmp_path / "nus.bin")
    with pytest.raises(PointCloudFormatError, match="not a whole number of 4-value float32 records"):
        read_points(tmp_path / "nus.bin")  # 41*5 floats do not split into records of 4
    cloud = read_points(tmp_path / "nus.bin", dims=5)
    np.testing.assert_array_equal(cloud.xyz, nus[:, :3])
    np.testing.assert_array_equal(cloud.intensity, nus[:, 3])
    named = read_points(tmp_path / "nus.bin", record_fields=["x", "y", "z", "_", "intensity"])
    np.testing.assert_array_equal(named.intensity, nus[:, 4])
    s3 = np.concatenate([rng.uniform(0, 5, (10, 3)), rng.integers(0, 256, (10, 3))], axis=1).astype(np.float32)
    s3.tofile(tmp_path / "room.bin")
    room = read_points(tmp_path / "room.bin", dims=6)
    np.testing.assert_allclose(room.rgb, s3[:, 3:] / 255.0, atol=1e-7)
    with pytest.raises(PcsegValueError, match="dims=9 has no default layout"):
        read_points(tmp_path / "room.bin", dims=9)
    with pytest.raises(PcsegValueError, match=r"option\(s\) \['bogus'\] do not apply"):
        read_points(tmp_path / "room.bin", bogus=1)


def test_npy_layouts(tmp_path):
    rng = np.random.default_rng(1)
    xyz = rng.normal(size=(25, 3)).astype(np.float32)
    np.save(tmp_path / "o3d.npy", xyz)
    np.testing.assert_array_equal(read_points(tmp_path / "o3d.npy").xyz, xyz)
    xyzrgb = np.concatenate([xyz, rng.uniform(0, 1, (25, 3))], axis=1)
    np.save(tmp_path / "room.npy", xyzrgb)
    room = read_points(tmp_path / "room.npy")
    np.testing.assert_allclose(room.rgb, xyzrgb[:, 3:], atol=1e-7)
    labels = rng.integers(0, 20, (25, 1)).astype(np.int32)
    np.save(tmp_path / "lab.npy", labels)
    with_labels = read_points(tmp_path / "o3d.npy", labels=tmp_path / "lab.npy")
    np.testing.assert_array_equal(with_labels.labels, labels[:, 0])
    assert with_labels.instance is None


def test_txt_s3dis_columns(tmp_path):
    rng = np.random.default_rng(2)
    table = np.concatenate([rng.uniform(0, 8, (30, 3)).round(3), rng.integers(0, 256, (30, 3))], axis=1)
    np.savetxt(tmp_path / "room.txt", table, fmt=["%.3f"] * 3 + ["%d"] * 3)
    room = read_points(tmp_path / "room.txt")
    np.testing.assert_allclose(room.xyz, table[:, :3], atol=1e-6)
    np.testing.assert_allclose(room.rgb, table[:, 3:] / 255.0, atol=1e-7)
    np.savetxt(tmp_path / "pts.xyz", table[:, :3], delimiter=",", header="x,y,z")
    np.testing.assert_allclose(read_points(tmp_path / "pts.xyz").xyz, table[:, :3], atol=1e-6)


def test_h5_named_datasets(tmp_path):
    import h5py

    rng = np.random.default_rng(3)
    xyz, sem = rng.normal(size=(40, 3)), rng.integers(0, 13, 40)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["coord"] = xyz
        f["segment"] = sem
        f.create_group("extra")["ints"] = rng.uniform(0, 1, 40)
    cloud = read_points(tmp_path / "a.h5")
    np.testing.assert_allclose(cloud.xyz, xyz, atol=1e-6)
    np.testing.assert_array_equal(cloud.labels, sem)
    named = read_points(tmp_path / "a.h5", names={"intensity": "extra/ints"})
    assert named.intensity is not None and len(named.intensity) == 40
    # PointNet-style S3DIS blocks: data (B, P, 9), label (B, P)
    blocks = rng.uniform(0, 1, (2, 8, 9))
    with h5py.File(tmp_path / "blocks.hdf5", "w") as f:
        f["data"] = blocks
        f["label"] = rng.integers(0, 13, (2, 8))
    fields = ["x", "y", "z", "r", "g", "b", "_", "_", "_"]
    cloud = read_points(tmp_path / "blocks.hdf5", record_fields=fields)
    assert len(cloud) == 16
    np.testing.assert_allclose(cloud.rgb, blocks.reshape(-1, 9)[:, 3:6], atol=1e-7)
    with pytest.raises(PointCloudFormatError, match="no array named 'pts'"):
        read_points(tmp_path / "a.h5", names={"xyz": "pts"})


def test_las_synthetic_tile(tmp_path):
    import laspy

    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales = np.array([0.01, 0.01, 0.01])
    header.offsets = np.array([600000.0, 4200000.0, 0.0])
    las = laspy.LasData(header)
    world = np.array([[600123.45, 4200456.78, 12.34], [600999.99, 4200000.01, 99.99], [600500.00, 4200300.50, 0.0]])
    las.x, las.y, las.z = world.T
    las.classification = np.array([2, 6, 31], dtype=np.uint8)
    las.red = np.array([65535, 0, 32768], dtype=np.uint16)
    las.green = las.blue = np.zeros(3, dtype=np.uint16)
    las.intensity = np.array([10, 200, 3000], dtype=np.uint16)
    las.write(tmp_path / "tile.las")
    cloud = read_points(tmp_path / "tile.las")
    # centimetre-exact world coordinates
    np.testing.assert_array_equal(np.round(cloud.world_xyz() * 100), np.round(world * 100))
    np.testing.assert_array_equal(cloud.labels, [2, 6, 31])
    np.testing.assert_allclose(cloud.rgb[:, 0], [1.0, 0.0, 32768 / 65535], atol=1e-7)
    np.testing.assert_array_equal(cloud.intensity, [10, 200, 3000])
    with pytest.raises(PointCloudFormatError, match="has no field 'nir'"):
        read_points(tmp_path / "tile.las", las_fields=["nir"])


# ----------------------------------------------------------------------------- bad input
def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(PcsegFileNotFoundError, match="nope.bin") as info:
        read_points(tmp_path / "nope.bin")
    assert isinstance(info.value, FileNotFoundError)
    (tmp_path / "scan.obj").write_text("v 0 0 0\n")
    with pytest.raises(PointCloudFormatError, match=r"scan.obj: unknown point cloud suffix '.obj'") as info:
        read_points(tmp_path / "scan.obj")
    assert isinstance(info.value, ValueError)


def test_bin_with_partial_record(tmp_path):
    np.arange(10, dtype=np.float32).tofile(tmp_path / "cut.bin")  # 2.5 records of 4 floats
    with pytest.raises(PointCloudFormatError, match=r"cut.bin: size 40 bytes is not a whole number"):
        read_points(tmp_path / "cut.bin")


def test_label_count_mismatch(tmp_path):
    np.zeros((5, 4), np.float32).tofile(tmp_path / "five.bin")
    write_labels(tmp_path / "four.label", np.array([1, 2, 3, 4]))
    with pytest.raises(PointCloudFormatError, match="four.label: 4 labels but the point cloud has 5 points"):
        read_points(tmp_path / "five.bin", labels=tmp_path / "four.label")


@pytest.mark.parametrize("suffix", [".bin", ".npy", ".ply"])
def test_nan_inf_reported_with_count_and_droppable(tmp_path, suffix):
    xyz = np.arange(30, dtype=np.float32).reshape(10, 3)
    xyz[2, 0], xyz[5, 2], xyz[7, 1] = np.nan, np.inf, -np.inf
    cloud = PointCloud(xyz=xyz, intensity=np.arange(10, dtype=np.float32))
    path = tmp_path / f"bad{suffix}"
    if suffix == ".bin":
        np.concatenate([xyz, cloud.intensity[:, None]], axis=1).tofile(path)
    elif suffix == ".npy":
        np.save(path, xyz)
    else:
        write_points(path, cloud)
    with pytest.raises(PointCloudFormatError, match=rf"bad\{suffix}: 3 of 10 points have NaN/Inf"):
        read_points(path)
    clean = read_points(path, drop_invalid=True)
    assert len(clean) == 7
    np.testing.assert_array_equal(clean.xyz, xyz[[0, 1, 3, 4, 6, 8, 9]])


@pytest.mark.parametrize("suffix", [".bin", ".npy", ".txt", ".npz"])
def test_empty_cloud(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    if suffix == ".bin":
        path.write_bytes(b"")
    elif suffix == ".npy":
        np.save(path, np.zeros((0, 3), np.float32))
    elif suffix == ".npz":
        np.savez(path, xyz=np.zeros((0, 3), np.float32))
    else:
        path.write_text("# nothing\n")
    with pytest.raises(PointCloudFormatError, match=rf"empty\{suffix}.*empty \(0 points\)"):
        read_points(path)


def test_malformed_files_name_the_file(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    (tmp_path / "junk.txt").write_text("1 2 three\n")
    (tmp_path / "junk.las").write_bytes(b"LASF" + b"\0" * 20)
    (tmp_path / "junk.h5").write_bytes(b"nope")
    (tmp_path / "junk.ply").write_text("ply\nformat ascii 1.0\nend_header\n")
    np.save(tmp_path / "wide.npy", np.zeros((4, 11), np.float32))
    for name in ["junk.npy", "junk.txt", "junk.las", "junk.h5", "junk.ply", "wide.npy"]:
        with pytest.raises(PcsegError, match=name.replace(".", r"\.")):
            read_points(tmp_path / name)


def test_nan_labels_and_non_integer_labels(tmp_path):
    np.save(tmp_path / "p.npy", np.zeros((3, 3), np.float32))
    np.save(tmp_path / "l.npy", np.array([0.5, 1, 2]))
    with pytest.raises(PointCloudFormatError, match="integers"):
        read_points(tmp_path / "p.npy", labels=tmp_path / "l.npy")


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=3, max_size=30))
@settings(max_examples=30, deadline=None)
def test_nan_count_matches_numpy(tmp_path_factory, values):
    values = values[: len(values) // 3 * 3]
    xyz = np.array(values, dtype=np.float32).reshape(-1, 3)
    path = tmp_path_factory.mktemp("nan") / "c.npy"
    np.save(path, xyz)
    bad = int((~np.isfinite(xyz).all(axis=1)).sum())
    if bad == 0:
        assert len(read_points(path)) == len(xyz)
    elif bad == len(xyz):
        with pytest.raises(PointCloudFormatError, match="every point"):
            read_points(path, drop_invalid=True)
    else:
        with pytest.raises(PointCloudFormatError, match=f"{bad} of {len(xyz)} points"):
            read_points(path)
        assert len(read_points(path, drop_invalid=True)) == len(xyz) - bad


@pytest.mark.parametrize("ascii", [False, True])
def test_ply_reader_agrees_with_open3d(tmp_path, ascii):
    """pcseg's own PLY reader reads what Open3D (an independent parser) reads from the same file."""
    o3d = pytest.importorskip("open3d")

    cloud = _random_cloud(40, seed=9)
    write_points(tmp_path / "c.ply", cloud, ascii=ascii)
    ours = read_points(tmp_path / "c.ply")
    theirs = o3d.t.io.read_point_cloud(str(tmp_path / "c.ply")).point
    np.testing.assert_allclose(ours.xyz, theirs["positions"].numpy(), atol=1e-6)
    assert theirs["colors"].numpy().dtype == np.uint8  # Open3D keeps the stored uchar
    np.testing.assert_allclose(ours.rgb * 255, theirs["colors"].numpy(), atol=1e-4)
    np.testing.assert_allclose(ours.normals, theirs["normals"].numpy(), atol=1e-6)
    np.testing.assert_array_equal(ours.labels, theirs["label"].numpy().ravel())
    np.testing.assert_array_equal(ours.instance, theirs["instance"].numpy().ravel())
    big = PointCloud(xyz=cloud.xyz, offset=[700000.0, 5.0e6, 0.0])
    write_points(tmp_path / "geo.ply", big)
    np.testing.assert_allclose(read_points(tmp_path / "geo.ply").world_xyz(), big.world_xyz(), atol=1e-4)


def test_import_pcseg_io_stays_light():
    """pcseg.io must import on the GPU machine, which has no open3d: nothing heavy at import."""
    import subprocess
    import sys

    code = ("import sys, pcseg.io, pcseg.cli.info; "
            "heavy = [m for m in ('open3d', 'laspy', 'h5py', 'torch', 'PIL') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_npz_keeps_offset_and_pixels(tmp_path):
    cloud = PointCloud(xyz=np.array([[0.25, 1.5, 2.0], [3.0, 4.0, 5.5]]), offset=[612000.0, 5123000.0, 100.0],
                       pixels=np.array([[3, 4], [5, 6]]))
    write_points(tmp_path / "c.npz", cloud)
    back = read_points(tmp_path / "c.npz")
    np.testing.assert_array_equal(back.world_xyz(), cloud.world_xyz())
    np.testing.assert_array_equal(back.pixels, cloud.pixels)


def test_laz_round_trip_through_laspy(tmp_path):
    """A compressed .laz written by laspy (lazrs backend) reads back with georeferenced precision."""
    laspy = pytest.importorskip("laspy")
    rng = np.random.default_rng(0)
    n = 500
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales = np.array([0.01, 0.01, 0.01])
    header.offsets = np.array([600000.0, 4500000.0, 0.0])
    las = laspy.LasData(header)
    world = np.c_[rng.uniform(600000, 600100, n), rng.uniform(4500000, 4500100, n), rng.uniform(0, 30, n)]
    las.x, las.y, las.z = world[:, 0], world[:, 1], world[:, 2]
    las.classification = rng.integers(1, 7, n).astype(np.uint8)
    las.intensity = rng.integers(0, 65535, n).astype(np.uint16)
    path = tmp_path / "tile.laz"
    las.write(str(path))

    cloud = read_points(path)
    stored = np.c_[np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)]  # after the 1 cm quantisation
    np.testing.assert_allclose(cloud.world_xyz(), stored, atol=1e-6)
    np.testing.assert_array_equal(cloud.labels, np.asarray(las.classification))
    np.testing.assert_array_equal(cloud.intensity, np.asarray(las.intensity).astype(np.float32))
