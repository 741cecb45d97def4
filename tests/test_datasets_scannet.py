"""The ``scannet`` dataset on tiny hand-written scenes in each layout: the raw release (binary PLYs
packed here byte by byte with ScanNet's header, aggregation and segment JSON written by hand),
Pointcept folders and one array per scene. Points, colours, labels and instances are checked
against values worked out by hand from ScanNet's official NYU40 -> benchmark mapping."""

import json
import struct

import numpy as np
import pytest

from pcseg.datasets.scannet import ScanNetDataset, read_scene
from pcseg.errors import PcsegFileNotFoundError, PcsegValueError, PointCloudFormatError
from pcseg.io import LabelMap

# six vertices: wall, floor, chair, chair, ceiling (not a benchmark class), otherfurniture
XYZ = np.array([[0.0, 0.0, 1.5], [1.0, 1.0, 0.0], [1.2, 0.8, 0.4], [1.3, 0.9, 0.45], [0.5, 0.5, 2.6],
                [2.0, 0.1, 0.3]], dtype=np.float32)
RGB = np.array([[200, 200, 190], [90, 60, 30], [255, 0, 0], [250, 5, 5], [240, 240, 240], [0, 0, 255]], np.uint8)
NYU40 = np.array([1, 2, 5, 5, 22, 39])
# official benchmark: NYU40 1..12 keep their number, 14->13, 16->14, 24->15, 28->16, 33->17, 34->18,
# 36->19, 39->20; every other id (22 ceiling) -> 0, ignored
TRAIN = np.array([1, 2, 5, 5, 0, 20])
FACES = [(0, 1, 2), (2, 3, 5)]


def write_scannet_ply(path, xyz, rgb, labels=None, faces=FACES):
    """A binary little-endian PLY laid out as ScanNet's tools write them (alpha, then faces)."""
    props = ["property float x", "property float y", "property float z", "property uchar red",
             "property uchar green", "property uchar blue", "property uchar alpha"]
    if labels is not None:
        props.append("property ushort label")
    header = "\n".join(["ply", "format binary_little_endian 1.0", "comment VCGLIB generated",
                        f"element vertex {len(xyz)}", *props, f"element face {len(faces)}",
                        "property list uchar int vertex_indices", "end_header"]) + "\n"
    body = bytearray()
    for i in range(len(xyz)):
        body += struct.pack("<fffBBBB", *xyz[i].tolist(), *rgb[i].tolist(), 255)
        if labels is not None:
            body += struct.pack("<H", int(labels[i]))
    for face in faces:
        body += struct.pack("<Biii", 3, *face)
    path.write_bytes(header.encode("ascii") + bytes(body))


def write_raw_scene(folder, name="scene0000_00", labels=True, instances=True, xyz=XYZ):
    scene = folder / name
    scene.mkdir(parents=True)
    write_scannet_ply(scene / f"{name}_vh_clean_2.ply", xyz, RGB)
    if labels:
        write_scannet_ply(scene / f"{name}_vh_clean_2.labels.ply", xyz, RGB, NYU40)
    if instances:
        segs = {"params": {"kThresh": "0.0001"}, "sceneId": name, "segIndices": [10, 10, 20, 21, 30, 40]}
        (scene / f"{name}_vh_clean_2.0.010000.segs.json").write_text(json.dumps(segs))
        groups = [{"id": 0, "objectId": 0, "segments": [10], "label": "wall"},
                  {"id": 1, "objectId": 1, "segments": [20, 21], "label": "chair"},
                  {"id": 2, "objectId": 2, "segments": [40], "label": "cabinet"}]
        agg = {"sceneId": f"scannet.{name}", "segGroups": groups,
               "segmentsFile": f"scannet.{name}_vh_clean_2.0.010000.segs.json"}
        (scene / f"{name}.aggregation.json").write_text(json.dumps(agg))
    return scene


def write_pointcept_scene(folder, name="scene0001_00"):
    scene = folder / name
    scene.mkdir(parents=True)
    np.save(scene / "coord.npy", XYZ[:4])
    np.save(scene / "color.npy", RGB[:4])
    np.save(scene / "normal.npy", np.tile(np.array([[0, 0, 1]], np.float32), (4, 1)))
    np.save(scene / "segment20.npy", np.array([-1, 0, 4, 19]))   # indices into the 20 classes
    np.save(scene / "segment200.npy", np.array([-1, 0, 2, 7]))
    np.save(scene / "instance.npy", np.array([-1, 0, 3, 3]))     # 0-based objects, -1 none
    return scene


@pytest.fixture
def scannet():
    return LabelMap.builtin("scannet")


def test_raw_release_scene(tmp_path, scannet):
    write_raw_scene(tmp_path / "scans")
    cloud = read_scene(tmp_path / "scans" / "scene0000_00")
    np.testing.assert_array_equal(cloud.xyz, XYZ)
    np.testing.assert_allclose(cloud.rgb, RGB / 255.0, atol=1e-7)
    np.testing.assert_array_equal(cloud.labels, NYU40)
    # objects: group 0 (wall: stuff -> 0), group 1 chair over segments 20 and 21 -> id 1 + 1,
    # vertex 4 in no group -> 0, group 2 over segment 40 -> id 2 + 1
    np.testing.assert_array_equal(cloud.instance, [0, 0, 2, 2, 0, 3])

    ds = ScanNetDataset(tmp_path, "scene0000_00", scannet, ["xyz", "rgb"])
    assert len(ds) == 1
    sample = ds[0]
    np.testing.assert_array_equal(sample["labels"], TRAIN)
    np.testing.assert_array_equal(sample["instance"], [0, 0, 2, 2, 0, 3])
    np.testing.assert_allclose(sample["feats"], np.hstack([XYZ, RGB / 255.0]), atol=1e-6)
    assert [scannet.class_names[t] for t in TRAIN] == ["wall", "floor", "chair", "chair", "unannotated",
                                                       "otherfurniture"]


def test_the_packed_ply_is_what_open3d_reads(tmp_path):
    """The test's PLY writer checked by an independent reader: Open3D sees the same mesh."""
    o3d = pytest.importorskip("open3d")
    scene = write_raw_scene(tmp_path, instances=False)
    mesh = o3d.io.read_triangle_mesh(str(scene / "scene0000_00_vh_clean_2.ply"))
    np.testing.assert_allclose(np.asarray(mesh.vertices), XYZ, atol=1e-7)
    np.testing.assert_allclose(np.asarray(mesh.vertex_colors), RGB / 255.0, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(mesh.triangles), FACES)
    labelled = o3d.io.read_point_cloud(str(scene / "scene0000_00_vh_clean_2.labels.ply"))
    np.testing.assert_allclose(np.asarray(labelled.points), XYZ, atol=1e-7)


def test_raw_scene_without_annotations(tmp_path, scannet):
    write_raw_scene(tmp_path / "scans_test", "scene0707_00", labels=False, instances=False)
    cloud = read_scene(tmp_path / "scans_test" / "scene0707_00")
    assert cloud.labels is None and cloud.instance is None and len(cloud) == 6
    with pytest.raises(PcsegValueError, match="scene0707_00_vh_clean_2.labels.ply"):
        ScanNetDataset(tmp_path, "scene0707_00", scannet, ["xyz"]).cloud(0)
    ds = ScanNetDataset(tmp_path, "scene0707_00", scannet, ["xyz"], require_labels=False)
    assert (ds[0]["labels"] == -1).all()


def test_pointcept_folder(tmp_path, scannet):
    write_pointcept_scene(tmp_path / "val")
    ds = ScanNetDataset(tmp_path, "val", scannet, ["xyz", "rgb", "normals"])
    cloud = ds.cloud(0)
    np.testing.assert_array_equal(cloud.xyz, XYZ[:4])
    np.testing.assert_allclose(cloud.rgb, RGB[:4] / 255.0, atol=1e-7)
    # segment20 -1 -> unannotated (0); 0 -> wall (NYU40 1); 4 -> chair (NYU40 5); 19 -> otherfurniture
    np.testing.assert_array_equal(cloud.labels, [0, 1, 5, 20])
    # Pointcept ids + 1, none -> 0; the wall's object is stuff -> 0
    np.testing.assert_array_equal(cloud.instance, [0, 0, 4, 4])
    assert ds[0]["feats"].shape == (4, 9)
    # every segment20 index: the official NYU40 ids of the 20 classes, then train ids 1..20 in order
    scene = tmp_path / "all" / "scene0009_00"
    scene.mkdir(parents=True)
    np.save(scene / "coord.npy", np.zeros((21, 3), np.float32))
    np.save(scene / "segment20.npy", np.arange(-1, 20))
    assert read_scene(scene).labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34,
                                                 36, 39]
    np.testing.assert_array_equal(ScanNetDataset(tmp_path, "all", scannet, ["xyz"]).cloud(0).labels, np.arange(21))


def test_one_array_per_scene(tmp_path, scannet):
    data = np.column_stack([XYZ, RGB.astype(np.float64), NYU40, [-1, 4, 0, 0, -1, 7]])
    np.save(tmp_path / "scene0002_00.npy", data)
    np.save(tmp_path / "scene0003_00.npy", data[:, :6])
    ds = ScanNetDataset(tmp_path, "scene0002_00", scannet, ["xyz", "rgb"])
    cloud = ds.cloud(0)
    np.testing.assert_allclose(cloud.xyz, XYZ, atol=1e-6)
    np.testing.assert_allclose(cloud.rgb, RGB / 255.0, atol=1e-6)
    np.testing.assert_array_equal(cloud.labels, TRAIN)
    np.testing.assert_array_equal(cloud.instance, [0, 0, 1, 1, 0, 8])  # floor's object is stuff
    unlabeled = read_scene(tmp_path / "scene0003_00.npy")
    assert unlabeled.labels is None and unlabeled.instance is None


def test_splits_by_list_folder_and_glob(tmp_path, scannet):
    for name in ("scene0000_00", "scene0000_01", "scene0011_00"):
        write_raw_scene(tmp_path / "scans", name)
    write_pointcept_scene(tmp_path / "train", "scene0100_00")
    (tmp_path / "scannetv2_val.txt").write_text("scene0011_00\nscene0100_00\n\n")
    names = lambda ds: [p.stem if p.is_file() else p.name for p in ds.items]  # noqa: E731
    assert names(ScanNetDataset(tmp_path, "scannetv2_val.txt", scannet, ["xyz"])) == ["scene0011_00", "scene0100_00"]
    assert names(ScanNetDataset(tmp_path, "scene0000_*", scannet, ["xyz"])) == ["scene0000_00", "scene0000_01"]
    assert names(ScanNetDataset(tmp_path, ["train", "scene00*"], scannet, ["xyz"])) == [
        "scene0100_00", "scene0000_00", "scene0000_01", "scene0011_00"]
    absolute = tmp_path / "scannetv2_val.txt"
    assert names(ScanNetDataset(tmp_path, str(absolute), scannet, ["xyz"])) == ["scene0011_00", "scene0100_00"]
    (tmp_path / "missing.txt").write_text("scene0011_00\nscene0999_00\n")
    with pytest.raises(PcsegFileNotFoundError, match="scene0999_00"):
        ScanNetDataset(tmp_path, "missing.txt", scannet, ["xyz"])
    with pytest.raises(PcsegFileNotFoundError, match="scene9"):
        ScanNetDataset(tmp_path, "scene9*", scannet, ["xyz"])
    with pytest.raises(PcsegFileNotFoundError, match="dataset.root"):
        ScanNetDataset(tmp_path / "nowhere", "train", scannet, ["xyz"])
    write_pointcept_scene(tmp_path / "val", "scene0011_00")  # now under scans/ and val/
    with pytest.raises(PcsegValueError, match="more than once"):
        ScanNetDataset(tmp_path, "scene0011_00", scannet, ["xyz"])


def test_bad_scenes_are_named(tmp_path, scannet):
    scene = write_raw_scene(tmp_path, "scene0000_00")
    write_scannet_ply(scene / "scene0000_00_vh_clean_2.labels.ply", XYZ[:5], RGB[:5], NYU40[:5])
    with pytest.raises(PointCloudFormatError, match="labels.ply: 5 vertices"):
        read_scene(scene)
    scene = write_raw_scene(tmp_path, "scene0001_00")
    (scene / "scene0001_00.aggregation.json").write_text("{not json")
    with pytest.raises(PointCloudFormatError, match="aggregation.json: not valid JSON"):
        read_scene(scene)
    scene = write_raw_scene(tmp_path, "scene0002_00")
    (scene / "scene0002_00_vh_clean_2.0.010000.segs.json").write_text(json.dumps({"segIndices": [1, 2]}))
    with pytest.raises(PointCloudFormatError, match="2 segIndices but the mesh has 6"):
        read_scene(scene)
    scene = write_pointcept_scene(tmp_path, "scene0003_00")
    np.save(scene / "segment20.npy", np.array([0, 1, 2, 20]))
    with pytest.raises(PointCloudFormatError, match="-1..19"):
        read_scene(scene)
    np.save(scene / "segment20.npy", np.array([0, 1, 2, 19]))
    np.save(scene / "color.npy", np.zeros((4, 4), np.uint8))  # RGBA is not what Pointcept writes
    with pytest.raises(PointCloudFormatError, match=r"color.npy: expected shape \(4, 3\)"):
        read_scene(scene)
    np.save(tmp_path / "scene0004_00.npy", np.zeros((3, 4)))
    with pytest.raises(PointCloudFormatError, match=r"\(N, 6\+\)"):
        read_scene(tmp_path / "scene0004_00.npy")
    # SemanticKITTI ids in a label file: the error names the label map they fit
    data = np.column_stack([XYZ, RGB.astype(np.float64), [40, 44, 48, 50, 70, 10]])
    np.save(tmp_path / "scene0005_00.npy", data)
    with pytest.raises(PcsegValueError, match="scene0005_00.npy.*try --label-map semantickitti"):
        ScanNetDataset(tmp_path, "scene0005_00", scannet, ["xyz"]).cloud(0)


def test_trains_one_step_through_the_engine(tmp_path):
    from pcseg.engine.config import validate_config
    from pcseg.engine.trainer import Trainer

    for name in ("scene0000_00", "scene0001_00"):
        write_raw_scene(tmp_path / "data" / "scans", name)
    (tmp_path / "data" / "val.txt").write_text("scene0001_00\n")
    config = validate_config({
        "dataset": {"name": "scannet", "root": str(tmp_path / "data"), "label_map": "scannet",
                    "train_split": ["scene0000_00"], "val_split": "val.txt", "features": ["xyz", "rgb"],
                    "augment": {"rotate_z": False}},
        "model": {"name": "test_engine_support:PointMLP", "hidden": 8},
        "train": {"epochs": 1, "batch_size": 1, "lr": 0.01, "out_dir": str(tmp_path / "run"), "progress": False,
                  "tensorboard": False, "seed": 3, "threads": 1},
    })
    metrics = Trainer(config, log=lambda *a: None).fit()
    assert (tmp_path / "run" / "last.pt").is_file()
    assert 0.0 <= metrics["miou"] <= 1.0


def test_scannet_label_map_is_the_official_benchmark(scannet):
    """Label map ``scannet`` against ScanNet's benchmark definition: 20 NYU40 ids kept in order,
    every other id of 0..40 ignored, colours from ScanNet's own palette (util.py)."""
    benchmark = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39]
    train = scannet.to_train(np.arange(41))
    expected = np.zeros(41, np.int64)
    expected[benchmark] = np.arange(1, 21)
    np.testing.assert_array_equal(train, expected)
    assert scannet.ignore_index == [0] and scannet.num_classes == 21
    palette = [(174, 199, 232), (152, 223, 138), (31, 119, 180), (255, 187, 120), (188, 189, 34), (140, 86, 75),
               (255, 152, 150), (214, 39, 40), (197, 176, 213), (148, 103, 189), (196, 156, 148), (23, 190, 207),
               (247, 182, 210), (219, 219, 141), (255, 127, 14), (158, 218, 229), (44, 160, 44), (112, 128, 144),
               (227, 119, 194), (82, 84, 163)]
    np.testing.assert_array_equal(scannet.colors[1:], palette)
