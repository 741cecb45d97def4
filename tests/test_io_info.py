"""``pcseg info`` through the CLI's main function, on the bundled sample and every shared file."""

from __future__ import annotations

import json

import numpy as np

from conftest import REPO
from pcseg.cli import main


def _info(capsys, *argv):
    code = main(["info", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_readme_main_command(capsys):
    """The README's command: the bundled sample with its labels and the SemanticKITTI map."""
    data = REPO / "pcseg" / "data"
    code, out, _ = _info(capsys, data / "sample_scan.bin", "--labels", data / "sample_scan.label",
                         "--label-map", "semantickitti", "--json")
    assert code == 0
    summary = json.loads(out)
    raw = np.fromfile(data / "sample_scan.bin", dtype="<f4").reshape(-1, 4)
    labels = np.fromfile(data / "sample_scan.label", dtype="<u4") & 0xFFFF
    assert summary["points"] == len(raw)
    np.testing.assert_allclose(summary["bounds_min"], raw[:, :3].min(0), rtol=1e-6)
    np.testing.assert_allclose(summary["bounds_max"], raw[:, :3].max(0), rtol=1e-6)
    ids, counts = np.unique(labels, return_counts=True)
    assert [(r["id"], r["count"]) for r in summary["labels"]] == list(zip(ids.tolist(), counts.tolist()))
    names = {10: "car", 40: "road", 48: "sidewalk", 50: "building", 70: "vegetation"}
    for row in summary["labels"]:
        if row["id"] in names:
            assert row["name"] == names[row["id"]]
    code, text, _ = _info(capsys, data / "sample_scan.bin", "--labels", data / "sample_scan.label",
                          "--label-map", "semantickitti")
    assert code == 0 and f"points:  {len(raw):,}" in text and "car" in text


def test_label_map_from_yaml_path(capsys):
    data = REPO / "pcseg" / "data"
    code, out, _ = _info(capsys, data / "sample_scan.bin", "--labels", data / "sample_scan.label",
                         "--label-map", REPO / "pcseg" / "data" / "label_maps" / "semantickitti.yaml", "--json")
    assert code == 0 and json.loads(out)["label_map"] == "semantickitti"


def test_errors_become_exit_status_2(capsys, tmp_path):
    code, _, err = _info(capsys, tmp_path / "missing.bin")
    assert code == 2 and "pcseg info: error:" in err and "missing.bin" in err
    np.zeros(5, np.float32).tofile(tmp_path / "odd.bin")
    code, _, err = _info(capsys, tmp_path / "odd.bin")
    assert code == 2 and "not a whole number" in err
    code, _, err = _info(capsys, REPO / "pcseg" / "data" / "sample_scan.bin", "--label-map", "nope")
    assert code == 2 and "neither a built-in" in err


def test_every_shared_file(capsys, shared_data):
    """Every capture, label file, label map and camera file in ../shared/data gives a summary."""
    files = sorted(p for p in shared_data.rglob("*") if p.is_file() and p.suffix != ".md")
    assert len(files) >= 20
    for path in files:
        code, out, err = _info(capsys, path, "--json")
        assert code == 0, f"{path}: {err}"
        summary = json.loads(out)
        assert summary["file"].endswith(path.name)


def test_shared_facts_through_cli(capsys, shared_data):
    code, out, _ = _info(capsys, shared_data / "las" / "sample_c.las", "--label-map", "asprs", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["points"] == 14408
    by_id = {r["id"]: r for r in summary["labels"]}
    assert by_id[6]["name"] == "building" and by_id[31]["train_id"] == 0 and by_id[31]["ignored"]
    code, out, _ = _info(capsys, shared_data / "rgbd" / "TUM_depth.png", "--intrinsics",
                         shared_data / "rgbd" / "camera_primesense.json", "--depth-scale", "5000", "--json")
    assert code == 0 and json.loads(out)["fields"] == ["xyz", "pixels"]
    npy = shared_data / "semantickitti-npy"
    code, out, _ = _info(capsys, npy / "kitti_01_points_000000.npy", "--labels", npy / "kitti_01_labels_000000.npy",
                         "--label-map", "semantickitti", "--train-ids", "--json")
    rows = json.loads(out)["labels"]
    labels = np.load(npy / "kitti_01_labels_000000.npy")[:, 0]
    assert sum(r["count"] for r in rows) == len(labels)
    assert {r["id"]: r["name"] for r in rows}[9] == "road"
    # mmdetection3d S3DIS export: layout and labels found from the file names
    code, out, _ = _info(capsys, shared_data / "s3dis" / "Area_1_office_2_points.bin", "--label-map", "s3dis", "--json")
    summary = json.loads(out)
    assert summary["points"] == 100 and "rgb" in summary["fields"]
    semantic = np.fromfile(shared_data / "s3dis" / "Area_1_office_2_semantic.bin", dtype=np.int64)
    assert {r["id"]: r["count"] for r in summary["labels"]} == dict(zip(*map(list, np.unique(semantic, return_counts=True))))
