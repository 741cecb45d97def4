"""Label maps and label files: built-in YAMLs, raw <-> train ids, .label round trips."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pcseg.errors import ConfigError, PcsegFileNotFoundError, PcsegValueError, PointCloudFormatError
from pcseg.io import LabelMap, read_labels, write_labels


# ----------------------------------------------------------------------------- LabelMap
def test_semantickitti_builtin_matches_official_yaml(shared_data):
    """Our shipped map must agree with the official semantic-kitti.yaml, id for id."""
    official = yaml.safe_load((shared_data / "semantickitti" / "semantic-kitti.yaml").read_text())
    lm = LabelMap.builtin("semantickitti")
    assert lm.num_classes == 20
    assert lm.ignore_index == [0]
    raw_ids = np.array(sorted(official["learning_map"]))
    expected = np.array([official["learning_map"][r] for r in raw_ids])
    np.testing.assert_array_equal(lm.to_train(raw_ids), expected)
    for train_id in range(20):
        raw = official["learning_map_inv"][train_id]
        assert lm.class_names[train_id] == official["labels"][raw]
        b, g, r = official["color_map"][raw]
        assert tuple(lm.colors[train_id]) == (r, g, b)
    assert lm.raw_names == {int(k): v for k, v in official["labels"].items()}


def test_semantickitti_facts_without_shared():
    lm = LabelMap.builtin("semantickitti")
    assert lm.class_names[1] == "car" and lm.class_names[19] == "traffic-sign"
    # moving classes merge into their static class; outlier to unlabeled
    np.testing.assert_array_equal(lm.to_train(np.array([252, 254, 1, 60, 10])), [1, 6, 0, 9, 1])
    assert tuple(lm.colors[1]) == (100, 150, 245)  # car: BGR [245,150,100] flipped
    assert lm.colors.dtype == np.uint8 and lm.colors.shape == (20, 3)
    assert lm.raw_colors[10] == (100, 150, 245)


@pytest.mark.parametrize(
    "name, num_classes, ignore, first_name",
    [("s3dis", 13, [], "ceiling"), ("scannet", 21, [0], "unannotated"), ("asprs", 14, [0], "unclassified")],
)
def test_other_builtins(name, num_classes, ignore, first_name):
    lm = LabelMap.builtin(name)
    assert lm.num_classes == num_classes
    assert lm.ignore_index == ignore
    assert lm.class_names[0] == first_name
    assert lm.colors.shape == (num_classes, 3) and lm.colors.dtype == np.uint8
    # every train id maps back to a raw id that maps forward to the same train id
    train = np.arange(num_classes)
    np.testing.assert_array_equal(lm.to_train(lm.to_raw(train)), train)


def test_scannet_benchmark_classes():
    lm = LabelMap.builtin("scannet")
    real = [lm.class_names[t] for t in range(1, 21)]
    assert real == ["wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window",
                    "bookshelf", "picture", "counter", "desk", "curtain", "refrigerator",
                    "shower curtain", "toilet", "sink", "bathtub", "otherfurniture"]
    # NYU40 classes outside the benchmark (13 blinds, 22 ceiling, 40 otherprop) are ignored
    np.testing.assert_array_equal(lm.to_train(np.array([13, 22, 40, 33])), [0, 0, 0, 17])


def test_asprs_unknown_ids_go_to_unclassified():
    lm = LabelMap.builtin("asprs")
    np.testing.assert_array_equal(lm.to_train(np.array([2, 6, 31, 64, 255, 7])), [1, 5, 0, 0, 0, 0])


def test_unknown_raw_id_is_a_clear_error():
    lm = LabelMap.builtin("semantickitti")
    with pytest.raises(PcsegValueError, match=r"raw id\(s\) not in the label map: 2, 77"):
        lm.to_train(np.array([10, 2, 77, 77]))
    with pytest.raises(PcsegValueError, match="0..19"):
        lm.to_raw(np.array([20]))
    with pytest.raises(PcsegValueError, match="integers"):
        lm.to_train(np.array([1.5]))


@given(arrays(np.int64, st.integers(0, 50), elements=st.sampled_from([0, 1, 10, 11, 13, 15, 16, 18, 20, 30, 31, 32,
       40, 44, 48, 49, 50, 51, 52, 60, 70, 71, 72, 80, 81, 99, 252, 253, 254, 255, 256, 257, 258, 259])))
@settings(max_examples=50, deadline=None)
def test_to_raw_after_to_train_is_a_projection(raw):
    """to_train(to_raw(to_train(x))) == to_train(x): mapping back and forth loses nothing more."""
    lm = LabelMap.builtin("semantickitti")
    train = lm.to_train(raw)
    assert train.dtype == np.int64 and train.shape == raw.shape
    np.testing.assert_array_equal(lm.to_train(lm.to_raw(train)), train)


def test_load_by_name_or_path(tmp_path):
    assert LabelMap.load("SemanticKITTI").num_classes == 20
    custom = tmp_path / "mine.yaml"
    custom.write_text(yaml.safe_dump({
        "labels": {0: "none", 5: "tree", 9: "rock"},
        "color_map": {0: [0, 0, 0], 5: [0, 255, 0], 9: [255, 0, 0]},
        "learning_map": {0: 0, 5: 1, 9: 2},
        "learning_map_inv": {0: 0, 1: 5, 2: 9},
        "learning_ignore": {0: True, 1: False, 2: False},
    }))
    lm = LabelMap.load(str(custom))
    assert lm.class_names == ["none", "tree", "rock"]
    assert tuple(lm.colors[2]) == (0, 0, 255)  # BGR [255,0,0] -> RGB blue
    assert lm.name == "mine"
    np.testing.assert_array_equal(lm.to_raw(np.array([2, 1])), [9, 5])


def test_label_map_errors(tmp_path):
    with pytest.raises(PcsegValueError, match="unknown built-in"):
        LabelMap.builtin("kitti360")
    with pytest.raises(PcsegFileNotFoundError):
        LabelMap.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("labels: {0: a}\n")
    with pytest.raises(ConfigError, match="missing key"):
        LabelMap.from_yaml(bad)
    with pytest.raises(PcsegValueError, match="neither a built-in"):
        LabelMap.load("no-such-map")


# ----------------------------------------------------------------------------- .label files
@given(
    st.integers(0, 200).flatmap(
        lambda n: st.tuples(
            arrays(np.int64, n, elements=st.integers(0, 0xFFFF)),
            arrays(np.int64, n, elements=st.integers(0, 0xFFFF)),
        )
    )
)
@settings(max_examples=40, deadline=None)
def test_label_round_trip_is_bit_exact(tmp_path_factory, pair):
    semantic, instance = pair
    path = tmp_path_factory.mktemp("labels") / "x.label"
    write_labels(path, semantic, instance)
    # independent decode of the file bytes
    packed = np.frombuffer(path.read_bytes(), dtype="<u4")
    np.testing.assert_array_equal(packed, semantic.astype(np.uint64) + (instance.astype(np.uint64) << 16))
    sem, inst = read_labels(path, return_instance=True)
    assert sem.dtype == np.int64 and inst.dtype == np.int64
    np.testing.assert_array_equal(sem, semantic)
    np.testing.assert_array_equal(inst, instance)


def test_real_label_file_round_trip(kitti_scan, tmp_path):
    _, label_path = kitti_scan
    original = label_path.read_bytes()
    sem, inst = read_labels(label_path, return_instance=True)
    assert len(sem) == 123389
    write_labels(tmp_path / "copy.label", sem, inst)
    assert (tmp_path / "copy.label").read_bytes() == original


def test_write_labels_rejects_out_of_range(tmp_path):
    with pytest.raises(PcsegValueError, match="16 bits"):
        write_labels(tmp_path / "a.label", np.array([70000]))
    with pytest.raises(PcsegValueError, match="16 bits"):
        write_labels(tmp_path / "a.label", np.array([-1]))
    with pytest.raises(PcsegValueError, match="integers"):
        write_labels(tmp_path / "a.label", np.array([1.0]))
    with pytest.raises(PcsegValueError, match="instance"):
        write_labels(tmp_path / "a.label", np.array([1, 2]), np.array([1]))
    assert not (tmp_path / "a.label").exists()


def test_write_labels_is_atomic(tmp_path, monkeypatch):
    """A failure mid-write keeps the old file and leaves no temporary behind."""
    path = tmp_path / "keep.label"
    write_labels(path, np.array([1, 2, 3]))
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    import pcseg.atomic

    monkeypatch.setattr(pcseg.atomic.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_labels(path, np.array([4, 5, 6]))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.label"]


def test_npy_labels_round_trip(tmp_path):
    labels = np.array([0, 5, 19, 3], dtype=np.int64)
    write_labels(tmp_path / "l.npy", labels)
    np.testing.assert_array_equal(read_labels(tmp_path / "l.npy"), labels)
    np.save(tmp_path / "o3d.npy", labels.astype(np.int32).reshape(-1, 1))  # Open3D-ML layout
    np.testing.assert_array_equal(read_labels(tmp_path / "o3d.npy"), labels)


def test_bad_label_files(tmp_path):
    with pytest.raises(PcsegFileNotFoundError, match="label file not found"):
        read_labels(tmp_path / "missing.label")
    odd = tmp_path / "odd.label"
    odd.write_bytes(b"\x00" * 7)
    with pytest.raises(PointCloudFormatError, match="odd.label.*not a whole number"):
        read_labels(odd)
    write_labels(tmp_path / "three.label", np.array([1, 2, 3]))
    with pytest.raises(PointCloudFormatError, match="3 labels but the point cloud has 4 points"):
        read_labels(tmp_path / "three.label", num_points=4)
    (tmp_path / "x.csv").write_text("1\n")
    with pytest.raises(PointCloudFormatError, match="unknown label file suffix"):
        read_labels(tmp_path / "x.csv")


def test_to_dict_rebuilds_an_equal_map(shared_data):
    for name in ("semantickitti", "s3dis", "scannet", "asprs"):
        lm = LabelMap.builtin(name)
        again = LabelMap(lm.to_dict())
        assert again == lm
        np.testing.assert_array_equal(again.colors, lm.colors)
        assert again.class_names == lm.class_names and again.ignore_index == lm.ignore_index
    # the official file and our copy are the same map
    official = LabelMap.from_yaml(shared_data / "semantickitti" / "semantic-kitti.yaml")
    assert official == LabelMap.builtin("semantickitti")
    assert LabelMap.builtin("s3dis") != LabelMap.builtin("scannet")


def test_equality_ignores_spelling_of_learning_ignore():
    spec = LabelMap.builtin("asprs").to_dict()
    spec["learning_ignore"] = {0: True}  # the other ids default to not ignored
    assert LabelMap(spec) == LabelMap.builtin("asprs")
    spec["learning_ignore"] = {0: True, 5: True}
    assert LabelMap(spec) != LabelMap.builtin("asprs")
