"""Every real capture in ../shared/data, checked against facts computed here independently."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import yaml

from pcseg.errors import PointCloudFormatError
from pcseg.io import LabelMap, read_depth, read_labels, read_points


def test_semantickitti_scan(kitti_scan, shared_data):
    bin_path, label_path = kitti_scan
    cloud = read_points(bin_path, labels=label_path)
    raw = np.frombuffer(bin_path.read_bytes(), dtype="<f4").reshape(-1, 4)
    assert len(cloud) == 123389 == bin_path.stat().st_size // 16
    np.testing.assert_array_equal(cloud.xyz, raw[:, :3])
    np.testing.assert_array_equal(cloud.intensity, raw[:, 3])
    packed = np.frombuffer(label_path.read_bytes(), dtype="<u4")
    np.testing.assert_array_equal(cloud.labels, packed % 65536)
    np.testing.assert_array_equal(cloud.instance, packed // 65536)

    # histogram after mapping, reference built from the official YAML with a plain dict
    official = yaml.safe_load((shared_data / "semantickitti" / "semantic-kitti.yaml").read_text())
    expected = np.zeros(20, dtype=np.int64)
    for raw_id, count in zip(*np.unique(packed % 65536, return_counts=True)):
        expected[official["learning_map"][int(raw_id)]] += count
    lm = LabelMap.builtin("semantickitti")
    np.testing.assert_array_equal(np.bincount(lm.to_train(cloud.labels), minlength=20), expected)
    # the scan holds car, bicycle, person, moving car and moving person (data README)
    assert {10, 11, 30, 252, 254} <= set(np.unique(cloud.labels).tolist())


@pytest.mark.parametrize("stem", ["kitti_01_%s_000000", "kitti_01_%s_000001", "kitti_01_%s_000002",
                                  "demo_%s_000700", "demo_%s_000750"])
def test_open3d_ml_npy_frames(shared_data, stem):
    folder = shared_data / "semantickitti-npy"
    points_path, labels_path = folder / f"{stem % 'points'}.npy", folder / f"{stem % 'labels'}.npy"
    points, labels = np.load(points_path), np.load(labels_path)
    cloud = read_points(points_path, labels=labels_path)
    assert len(cloud) == len(points) == len(labels)
    assert 80_000 < len(cloud) < 100_000
    np.testing.assert_array_equal(cloud.xyz, points)
    np.testing.assert_array_equal(cloud.labels, labels[:, 0])
    assert cloud.labels.min() >= 0 and cloud.labels.max() <= 19  # already train ids


def test_s3dis_sample(shared_data):
    folder = shared_data / "s3dis"
    points_path = folder / "Area_1_office_2_points.bin"
    # mmdetection3d's layout (float32 x, y, z, r, g, b with colours 0..255) needs dims=6
    cloud = read_points(points_path, dims=6, labels=folder / "Area_1_office_2_semantic.bin")
    table = np.fromfile(points_path, dtype=np.float32).reshape(100, 6)
    assert len(cloud) == 100
    np.testing.assert_array_equal(cloud.xyz, table[:, :3])
    np.testing.assert_allclose(cloud.rgb, table[:, 3:] / 255.0, atol=1e-7)
    semantic = np.fromfile(folder / "Area_1_office_2_semantic.bin", dtype=np.int64)
    lm = LabelMap.builtin("s3dis")
    np.testing.assert_array_equal(np.bincount(lm.to_train(cloud.labels), minlength=13),
                                  np.bincount(semantic, minlength=13))
    instance = read_labels(folder / "Area_1_office_2_instance.bin")
    np.testing.assert_array_equal(instance, np.fromfile(folder / "Area_1_office_2_instance.bin", dtype=np.int64))


def _las_header_and_classes(path):
    """Parse the LAS public header and the classification byte of every record by hand."""
    data = path.read_bytes()
    assert data[:4] == b"LASF"
    version_minor = data[25]
    point_offset = struct.unpack_from("<I", data, 96)[0]
    point_format = data[104] & 0x3F
    record_length = struct.unpack_from("<H", data, 105)[0]
    count = struct.unpack_from("<I", data, 107)[0]
    if version_minor >= 4 and count == 0:
        count = struct.unpack_from("<Q", data, 247)[0]
    scales = np.array(struct.unpack_from("<3d", data, 131))
    offsets = np.array(struct.unpack_from("<3d", data, 155))
    max_x, min_x, max_y, min_y, max_z, min_z = struct.unpack_from("<6d", data, 179)
    records = np.frombuffer(data, dtype=np.uint8, count=count * record_length, offset=point_offset)
    records = records.reshape(count, record_length)
    ints = records[:, :12].copy().view("<i4").reshape(count, 3)
    if point_format >= 6:
        classes = records[:, 16]
    else:
        classes = records[:, 15] & 0x1F
    return {
        "count": count, "scales": scales, "offsets": offsets, "ints": ints, "classes": classes,
        "min": np.array([min_x, min_y, min_z]), "max": np.array([max_x, max_y, max_z]),
    }


@pytest.mark.parametrize("name, count, classes", [
    ("sample_c.las", 14408, {2, 3, 4, 5, 6, 11, 14, 31}),
    ("las14_fmt6.las", 25408, {2, 3, 4, 5, 6, 7}),
])
def test_las_tiles(shared_data, name, count, classes):
    path = shared_data / "las" / name
    ref = _las_header_and_classes(path)
    cloud = read_points(path)
    assert len(cloud) == ref["count"] == count
    world = cloud.world_xyz()
    # world coordinates exact at the file's resolution: they round back to the stored integers
    np.testing.assert_array_equal(np.round((world - ref["offsets"]) / ref["scales"]).astype(np.int64), ref["ints"])
    np.testing.assert_allclose(world.min(0), ref["min"], atol=1e-6)
    np.testing.assert_allclose(world.max(0), ref["max"], atol=1e-6)
    assert cloud.offset[0] > 1e5 and np.abs(cloud.xyz).max() < 1e4  # georeferenced: offset kept
    np.testing.assert_array_equal(cloud.labels, ref["classes"])
    assert set(np.unique(cloud.labels).tolist()) == classes
    # histogram after the ASPRS map: reserved/user class 31 and noise 7 go to the ignored class 0
    lm = LabelMap.builtin("asprs")
    asprs_to_train = {2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 0, 11: 8, 14: 10, 31: 0}
    expected = np.zeros(lm.num_classes, dtype=np.int64)
    for raw_id, n in zip(*np.unique(ref["classes"], return_counts=True)):
        expected[asprs_to_train[int(raw_id)]] += n
    np.testing.assert_array_equal(np.bincount(lm.to_train(cloud.labels), minlength=lm.num_classes), expected)


def test_las_rgb_and_missing_field(shared_data):
    with_rgb = read_points(shared_data / "las" / "sample_c.las")
    assert with_rgb.rgb is not None and 0.0 <= with_rgb.rgb.min() and with_rgb.rgb.max() <= 1.0
    with pytest.raises(PointCloudFormatError, match="las14_fmt6.las: LAS point format 6 has no field 'red'"):
        read_points(shared_data / "las" / "las14_fmt6.las", las_fields=["red"])


def test_tum_depth_frame(shared_data):
    import open3d as o3d

    folder = shared_data / "rgbd"
    depth = np.asarray(o3d.io.read_image(str(folder / "TUM_depth.png")))  # independent decoder
    color = np.asarray(o3d.io.read_image(str(folder / "TUM_color.png")))
    cloud = read_depth(folder / "TUM_depth.png", folder / "camera_primesense.json", depth_scale=5000.0,
                       color_path=folder / "TUM_color.png")
    assert len(cloud) == int((depth > 0).sum())
    # one pixel back-projected by hand: fx = fy = 525, cx = 319.5, cy = 239.5
    u, v = 320, 240
    z = depth[v, u] / 5000.0
    expected = [(u - 319.5) * z / 525.0, (v - 239.5) * z / 525.0, z]
    index = np.flatnonzero((cloud.pixels[:, 0] == u) & (cloud.pixels[:, 1] == v))
    assert len(index) == 1
    np.testing.assert_allclose(cloud.xyz[index[0]], expected, rtol=1e-6)
    np.testing.assert_allclose(cloud.rgb[index[0]], color[v, u, :3] / 255.0, atol=1e-7)
    # a corner pixel: x and y negative (left, up), as the OpenCV camera frame has it
    vs, us = np.nonzero(depth)
    first = cloud.xyz[0]
    assert (cloud.pixels[0] == [us[0], vs[0]]).all()
    assert first[0] < 0 and first[1] < 0
    # the same cloud as Open3D's own back-projection (row-major order, zeros dropped)
    intr = o3d.camera.PinholeCameraIntrinsic(640, 480, 525.0, 525.0, 319.5, 239.5)
    ref = o3d.geometry.PointCloud.create_from_depth_image(
        o3d.geometry.Image(depth), intr, depth_scale=5000.0, depth_trunc=1e6)
    np.testing.assert_allclose(cloud.xyz, np.asarray(ref.points), atol=1e-5)
    near = read_depth(folder / "TUM_depth.png", (525.0, 525.0, 319.5, 239.5), depth_scale=5000.0, max_depth=2.0)
    assert len(near) == int(((depth > 0) & (depth <= 10000)).sum())
