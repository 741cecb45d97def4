"""Depth frames end to end: ``pcseg segment ... --format png`` on the real TUM RGB-D frame writes a
label image of the depth image's size, 0 exactly where the depth is invalid and the per-point
predictions elsewhere (placed through the ``pixels`` field), plus a colour overlay."""

import numpy as np
import pytest
from PIL import Image

from pcseg.cli import main
from pcseg.engine.segmenter import Segmenter
from pcseg.errors import PcsegValueError
from pcseg.io import LabelMap, read_depth
from pcseg.io.depth_labels import label_overlay, labels_to_image, write_label_png
from pcseg.pretrained import checkpoint_path


@pytest.fixture
def tum(shared_data):
    rgbd = shared_data / "rgbd"
    depth_path, color_path, camera = rgbd / "TUM_depth.png", rgbd / "TUM_color.png", rgbd / "camera_primesense.json"
    depth = np.array(Image.open(depth_path)).astype(np.int64)  # PIL decodes the 16-bit PNG on its own
    return depth_path, color_path, camera, depth


def _png(path):
    image = Image.open(path)
    return image.mode, np.array(image)


def test_labels_to_image_by_hand(tmp_path):
    pixels = np.array([[0, 0], [2, 1], [1, 1]], np.int32)  # (u, v) = (column, row)
    image = labels_to_image(pixels, np.array([7, 300, 5]), (2, 3))
    np.testing.assert_array_equal(image, [[7, 0, 0], [0, 5, 300]])
    mode, back = _png(write_label_png(tmp_path / "a.png", image))
    assert mode in ("I;16", "I") and back.dtype.kind in "iu"
    np.testing.assert_array_equal(back, image)
    mode, back = _png(write_label_png(tmp_path / "b.png", np.minimum(image, 255)))
    assert mode == "L" and back.dtype == np.uint8
    with pytest.raises(PcsegValueError, match="image is 3x2"):
        labels_to_image(np.array([[3, 0]], np.int32), np.array([1]), (2, 3))
    with pytest.raises(PcsegValueError, match="0..65535"):
        write_label_png(tmp_path / "c.png", np.array([[70000]]))
    # the overlay blends the class colour over the base where a point was labelled, base elsewhere
    colors = np.array([[0, 0, 0], [200, 100, 0]], np.uint8)
    base = np.full((2, 3, 3), 50, np.uint8)
    over = label_overlay(np.array([[1, -1, -1], [-1, 0, -1]]), colors, base, alpha=0.5, fill=-1)
    np.testing.assert_array_equal(over[0, 0], [125, 75, 25])
    np.testing.assert_array_equal(over[1, 1], [25, 25, 25])
    np.testing.assert_array_equal(over[0, 1], [50, 50, 50])


def test_cli_png_on_the_real_tum_frame(tmp_path, tum, one_thread):
    depth_path, color_path, camera, depth = tum
    ckpt = checkpoint_path("outdoor")  # xyz only: runs on any cloud
    code = main(["segment", "--checkpoint", str(ckpt), str(depth_path), "--intrinsics", str(camera),
                 "--depth-scale", "5000", "--color", str(color_path), "--format", "png", "--out", str(tmp_path),
                 "--threads", "1"])
    assert code == 0
    mode, labels = _png(tmp_path / "TUM_depth_labels.png")
    assert labels.shape == depth.shape == (480, 640)
    assert mode == "L"  # SemanticKITTI's raw ids of the 19 classes are at most 81: uint8
    np.testing.assert_array_equal(labels == 0, depth == 0)  # zero exactly where the depth is invalid

    # the same frame from Python: per-point predictions placed through `pixels`
    cloud = read_depth(depth_path, camera, depth_scale=5000, color_path=color_path)
    rows, cols = np.nonzero(depth > 0)  # read_depth keeps row-major pixel order
    np.testing.assert_array_equal(cloud.pixels, np.column_stack([cols, rows]))
    seg = Segmenter.from_checkpoint(ckpt, threads=1)
    raw = seg.label_map.to_raw(seg(cloud))
    np.testing.assert_array_equal(labels[cloud.pixels[:, 1], cloud.pixels[:, 0]], raw)
    assert set(np.unique(raw)) <= set(seg.label_map.learning_map_inv.values()) - {0}

    # the other formats take depth images too: one row per valid pixel, in row-major order
    assert main(["segment", "--checkpoint", str(ckpt), str(depth_path), "--intrinsics", str(camera),
                 "--depth-scale", "5000", "--format", "npy", "--out", str(tmp_path / "npy"), "--threads", "1"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "npy" / "TUM_depth.npy"), seg.label_map.to_train(raw))

    mode, overlay = _png(tmp_path / "TUM_depth_overlay.png")
    colour = np.array(Image.open(color_path))[:, :, :3]
    assert mode == "RGB" and overlay.shape == (480, 640, 3)
    np.testing.assert_array_equal(overlay[depth == 0], colour[depth == 0])  # untouched without depth
    train = seg.label_map.to_train(labels[depth > 0])
    expected = np.rint(0.5 * colour[depth > 0] + 0.5 * seg.label_map.colors[train].astype(np.float64))
    np.testing.assert_array_equal(overlay[depth > 0], expected)


def _scannet_checkpoint(tmp_path):
    """A checkpoint with the scannet label map and xyz + rgb features, trained for one step."""
    from pcseg.engine.config import validate_config
    from pcseg.engine.trainer import Trainer
    from test_datasets_scannet import write_raw_scene

    for name in ("scene0000_00", "scene0001_00"):
        write_raw_scene(tmp_path / "data" / "scans", name)
    config = validate_config({
        "dataset": {"name": "scannet", "root": str(tmp_path / "data"), "label_map": "scannet",
                    "train_split": "scene0000_00", "val_split": "scene0001_00", "features": ["xyz", "rgb"],
                    "augment": {"rotate_z": False}},
        "model": {"name": "test_engine_support:PointMLP", "hidden": 8},
        "train": {"epochs": 1, "batch_size": 1, "lr": 0.01, "out_dir": str(tmp_path / "run"), "progress": False,
                  "tensorboard": False, "seed": 3, "threads": 1},
    })
    Trainer(config, log=lambda *a: None).fit()
    return tmp_path / "run" / "last.pt"


def test_cli_png_with_an_rgb_scannet_model(tmp_path, tum, one_thread):
    depth_path, color_path, camera, depth = tum
    ckpt = _scannet_checkpoint(tmp_path)
    args = ["segment", "--checkpoint", str(ckpt), str(depth_path), "--intrinsics", "525,525,319.5,239.5",
            "--depth-scale", "5000", "--max-depth", "2.0", "--color", str(color_path), "--format", "png",
            "--threads", "1"]
    assert main(args + ["--out", str(tmp_path / "raw")]) == 0
    assert main(args + ["--out", str(tmp_path / "train"), "--png-ids", "train"]) == 0
    _, raw = _png(tmp_path / "raw" / "TUM_depth_labels.png")
    _, train = _png(tmp_path / "train" / "TUM_depth_labels.png")
    valid = (depth > 0) & (depth / 5000.0 <= 2.0)
    np.testing.assert_array_equal(raw > 0, valid)
    np.testing.assert_array_equal(train > 0, valid)
    benchmark = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39]
    assert set(np.unique(raw[valid])) <= set(benchmark)  # NYU40 ids of the 20 benchmark classes
    # train id t is written t + 1; raw ids are NYU40 ids: the same prediction either way
    scannet = LabelMap.builtin("scannet")
    np.testing.assert_array_equal(scannet.to_raw(train[valid].astype(np.int64) - 1), raw[valid])
    # the model's rgb input comes from the colour image: predictions match the Python API
    seg = Segmenter.from_checkpoint(ckpt, threads=1)
    cloud = read_depth(depth_path, (525, 525, 319.5, 239.5), depth_scale=5000, color_path=color_path, max_depth=2.0)
    np.testing.assert_array_equal(raw[cloud.pixels[:, 1], cloud.pixels[:, 0]], scannet.to_raw(seg(cloud)))


def test_cli_png_refusals(tmp_path, tum, capsys):
    depth_path, color_path, camera, _ = tum
    ckpt = str(checkpoint_path("outdoor"))
    base = ["segment", "--checkpoint", ckpt, "--out", str(tmp_path), "--format", "png"]
    assert main(base + [str(depth_path)]) == 2
    assert "need --intrinsics" in capsys.readouterr().err
    assert main(base + [str(depth_path), "--intrinsics", str(camera), "--color", str(color_path),
                        "--color", str(color_path)]) == 2
    assert "2 colour image(s) for 1 depth image(s)" in capsys.readouterr().err
    assert main(base + [str(camera), "--intrinsics", str(camera)]) == 2
    assert "not depth images" in capsys.readouterr().err
    np.save(tmp_path / "scan.npy", np.zeros((5, 3), np.float32))
    assert main(["segment", "--checkpoint", ckpt, "--out", str(tmp_path), str(tmp_path / "scan.npy"),
                 "--format", "npy"]) == 2
    assert "would overwrite an input file" in capsys.readouterr().err
    # a map with a real class at raw id 0 (S3DIS ceiling) cannot keep 0 for "no depth" in raw ids
    from types import SimpleNamespace

    from pcseg.cli.segment import _png_ids

    s3dis = SimpleNamespace(label_map=LabelMap.builtin("s3dis"))
    with pytest.raises(PcsegValueError, match="'ceiling' raw id 0.*--png-ids train"):
        _png_ids(s3dis, "raw")
    values, dtype = _png_ids(s3dis, "train")
    np.testing.assert_array_equal(values, np.arange(1, 14))
    assert dtype == np.uint8
