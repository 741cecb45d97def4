"""The train / eval / segment verbs end to end through ``pcseg.cli.main``."""

import json

import numpy as np
import yaml

from pcseg.cli import main
from pcseg.engine.segmenter import Segmenter
from pcseg.io import read_labels, read_points
from test_engine_support import write_toy_kitti


def _config_file(tmp_path, root, out):
    config = {
        "dataset": {"name": "semantickitti", "root": str(root), "train_split": [0], "val_split": [8],
                    "features": ["xyz", "intensity"]},
        "model": {"name": "test_engine_support:PointMLP", "hidden": 16},
        "train": {"epochs": 1, "batch_size": 1, "out_dir": str(out), "progress": False},
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_eval_segment(tmp_path, capsys):
    root = write_toy_kitti(tmp_path / "data", sequences=("00", "08"), scans=2, n=300)
    config = _config_file(tmp_path, root, tmp_path / "run")
    assert main(["train", str(config), "--set", "train.lr=0.005", "--set", "train.tensorboard=true"]) == 0
    ckpt = tmp_path / "run" / "last.pt"
    assert ckpt.is_file() and any((tmp_path / "run" / "tensorboard").iterdir())
    assert main(["train", str(config), "--resume", "--set", "train.epochs=2"]) == 0

    assert main(["eval", str(config), "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "mIoU" in out and "road" in out
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["scans"] == 2 and report["split"] == "val"

    scans = root / "sequences" / "08" / "velodyne"
    seg = Segmenter.from_checkpoint(ckpt)
    expected = seg(read_points(scans / "000000.bin"))
    for fmt in ("label", "npy", "ply"):
        assert main(["segment", "--checkpoint", str(ckpt), str(scans), "--out", str(tmp_path / fmt),
                     "--format", fmt]) == 0
    raw = read_labels(tmp_path / "label" / "000000.label")
    np.testing.assert_array_equal(raw, seg.label_map.to_raw(expected))  # raw ids in .label
    np.testing.assert_array_equal(np.load(tmp_path / "npy" / "000000.npy"), expected)  # train ids in .npy
    ply = read_points(tmp_path / "ply" / "000000.ply")
    np.testing.assert_array_equal(ply.labels, seg.label_map.to_raw(expected))  # raw ids in .ply
    np.testing.assert_allclose(ply.rgb * 255, seg.label_map.colors[expected], atol=0.5)  # class colours


def test_cli_errors_are_clear_and_keep_outputs(tmp_path, capsys):
    root = write_toy_kitti(tmp_path / "data", sequences=("00", "08"), scans=1, n=200)
    config = _config_file(tmp_path, root, tmp_path / "run")
    assert main(["train", str(config), "--set", "train.epoch=3"]) == 2
    assert "unknown key train.epoch" in capsys.readouterr().err
    assert main(["train", str(config), "--set", "dataset.root=/nonexistent/kitti"]) == 2
    assert "/nonexistent/kitti" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.label").write_bytes(b"1234")
    assert main(["segment", "--checkpoint", str(bad), str(root / "sequences" / "00" / "velodyne"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "bad.pt" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.label").read_bytes() == b"1234"
    assert main(["train", str(config), "--set", "train.epochs=1", "--set", "dataset.val_split=null"]) == 0
    assert main(["eval", str(config), "--checkpoint", str(tmp_path / "run" / "last.pt"),
                 "--set", "dataset.label_map=s3dis"]) == 2
    assert "label map semantickitti" in capsys.readouterr().err
    assert main(["segment", "--checkpoint", str(bad), str(tmp_path / "missing.bin"), "--out", str(tmp_path)]) == 2
    assert "missing.bin" in capsys.readouterr().err


def test_segment_rerun_skips_existing_outputs(tmp_path, capsys, monkeypatch):
    """A re-run after an interruption redoes only the missing outputs; --overwrite redoes all;
    two inputs that would share one output name are refused before any work."""
    root = write_toy_kitti(tmp_path / "data", sequences=("00", "08"), scans=3, n=200)
    config = _config_file(tmp_path, root, tmp_path / "run")
    assert main(["train", str(config), "--set", "train.epochs=1"]) == 0
    ckpt, scans, out = tmp_path / "run" / "last.pt", root / "sequences" / "08" / "velodyne", tmp_path / "out"
    assert main(["segment", "--checkpoint", str(ckpt), str(scans), "--out", str(out)]) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(first) == ["000000.label", "000001.label", "000002.label"]
    # Ctrl-C while the second scan is written: one line, whole files only, status 130
    from pcseg.io import labels as labels_module

    real_write, calls = labels_module.write_labels, []

    def interrupted_write(path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_write(path, *a, **k)

    capsys.readouterr()
    monkeypatch.setattr(labels_module, "write_labels", interrupted_write)
    import pcseg.io

    monkeypatch.setattr(pcseg.io, "write_labels", interrupted_write)
    assert main(["segment", "--checkpoint", str(ckpt), str(scans), "--out", str(tmp_path / "cut")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pcseg segment: interrupted; 1 of 3 output(s) written whole")
    assert [p.name for p in (tmp_path / "cut").iterdir()] == ["000000.label"]
    monkeypatch.undo()
    (out / "000001.label").unlink()  # as if the run had stopped before this scan
    (out / "000002.label").write_bytes(b"kept")  # a file the re-run must not touch
    (out / ".000001.abcd.tmp.label").write_bytes(b"torn")  # left by a killed write
    capsys.readouterr()
    assert main(["segment", "--checkpoint", str(ckpt), str(scans), "--out", str(out)]) == 0
    assert "wrote 1 label file(s)" in capsys.readouterr().out
    assert (out / "000001.label").read_bytes() == first["000001.label"]
    assert (out / "000002.label").read_bytes() == b"kept"
    assert sorted(p.name for p in out.iterdir()) == ["000000.label", "000001.label", "000002.label"]
    assert main(["segment", "--checkpoint", str(ckpt), str(scans), "--out", str(out), "--overwrite"]) == 0
    assert (out / "000002.label").read_bytes() == first["000002.label"]
    capsys.readouterr()
    assert main(["segment", "--checkpoint", str(ckpt), str(scans), str(root / "sequences" / "00" / "velodyne"),
                 "--out", str(tmp_path / "both")]) == 2
    assert "would both be written to" in capsys.readouterr().err
    assert not (tmp_path / "both").exists()


def test_config_mistakes_name_the_file_before_any_work(tmp_path, capsys):
    """A feature the data lacks and a misspelt model argument: one line naming the config file
    (with a did-you-mean), found before training starts, leaving no run folder behind."""
    root = write_toy_kitti(tmp_path / "data", sequences=("00", "08"), scans=1, n=200)
    config = _config_file(tmp_path, root, tmp_path / "run")
    assert main(["train", str(config), "--set", "dataset.features=[xyz,rgb]"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"pcseg train: error: config {config}: dataset.features")
    assert "no rgb field" in err and "000000.bin" in err
    assert main(["train", str(config), "--set", "model.hiden=8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pcseg train: error: config {config}: unknown key model.hiden (did you mean model.hidden?)")
    assert not (tmp_path / "run").exists()
