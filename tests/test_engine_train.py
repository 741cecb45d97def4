"""Training end to end on toy scans with the stand-in model: it learns, resumes bit-exactly,
writes checkpoints atomically and refuses bad input without losing earlier output."""

import csv

import pytest
import torch

from pcseg.engine.checkpoint import load_checkpoint, save_checkpoint
from pcseg.engine.trainer import Trainer
from pcseg.errors import CheckpointError, ConfigError, PcsegFileNotFoundError
from test_engine_support import toy_config, write_toy_kitti


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    return write_toy_kitti(tmp_path_factory.mktemp("toy"), sequences=("00", "08"), scans=4, n=600)


def test_toy_training_learns(toy_root, tmp_path):
    config = toy_config(toy_root, tmp_path / "run", epochs=12, lr=0.02, batch_size=1, scheduler="onecycle")
    metrics = Trainer(config, log=lambda *a: None).fit()
    # four separable classes (road, car, building, vegetation): a chance-level model scores ~0.1
    assert metrics["miou"] > 0.8, metrics
    for name in ("last.pt", "best.pt", "config.yaml", "log.csv"):
        assert (tmp_path / "run" / name).is_file()
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert len(rows) == 12 and float(rows[-1]["val_miou"]) == pytest.approx(metrics["miou"])
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["best_miou"] == max(float(r["val_miou"]) for r in rows)
    assert best["class_names"][1] == "car" and best["pcseg_version"]


def _augmenting(root, out, **train):
    config = toy_config(root, out, epochs=3, batch_size=2, lr=0.01, **train)
    config["dataset"]["augment"].update(rotate_z=True, scale=[0.9, 1.1], flip=True, jitter=0.01, dropout=0.1,
                                        scan_mix=0.5)
    config["dataset"]["num_points"] = 300
    return config


def test_resume_is_bit_exact(toy_root, tmp_path):
    quiet = dict(log=lambda *a: None)
    full = Trainer(_augmenting(toy_root, tmp_path / "full"), **quiet)
    full.fit()
    # stop in the middle of epoch 2 (2 steps per epoch), then resume in a fresh trainer
    Trainer(_augmenting(toy_root, tmp_path / "cut", max_steps=3), **quiet).fit()
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["step_in_epoch"] == 1
    resumed = Trainer(_augmenting(toy_root, tmp_path / "cut"), **quiet)
    resumed.fit(resume=True)
    assert resumed.step == full.step == 6
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    for a, b in zip(full.optimizer.state_dict()["state"].values(), resumed.optimizer.state_dict()["state"].values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"])


def test_existing_run_is_not_overwritten(toy_root, tmp_path):
    config = toy_config(toy_root, tmp_path / "run", epochs=1)
    Trainer(config, log=lambda *a: None).fit()
    before = (tmp_path / "run" / "last.pt").read_bytes()
    with pytest.raises(CheckpointError, match="--resume"):
        Trainer(config, log=lambda *a: None).fit()
    assert (tmp_path / "run" / "last.pt").read_bytes() == before
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Trainer(toy_config(toy_root, tmp_path / "other", epochs=1), log=lambda *a: None).fit(resume=True)


def test_resume_from_an_exported_checkpoint_is_refused(toy_root, tmp_path):
    from pcseg.engine.checkpoint import export_for_inference

    config = toy_config(toy_root, tmp_path / "run", epochs=1)
    Trainer(config, log=lambda *a: None).fit()
    export_for_inference(tmp_path / "run" / "last.pt", tmp_path / "run" / "last.pt")
    with pytest.raises(CheckpointError, match="no training state.*export_for_inference"):
        Trainer(toy_config(toy_root, tmp_path / "run", epochs=2), log=lambda *a: None).fit(resume=True)


def test_bad_checkpoints_are_reported(tmp_path):
    torn = tmp_path / "torn.pt"
    torn.write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(CheckpointError, match="torn.pt"):
        load_checkpoint(torn)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a pcseg checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(PcsegFileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    # an atomic save over an existing file leaves either the old or the new, never a torn file
    path = save_checkpoint(tmp_path / "ok.pt", {"config": {}, "label_map": {}, "model": {}})
    assert load_checkpoint(path)["format"] == "pcseg-checkpoint"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_config_errors_reach_the_user(toy_root, tmp_path):
    config = toy_config(toy_root, tmp_path / "run")
    config["model"]["num_classes"] = 19
    with pytest.raises(ConfigError, match="num_classes is 19 but .*20"):
        Trainer(config)
    config = toy_config(toy_root, tmp_path / "run")
    config["model"]["hiden"] = 3
    with pytest.raises(ConfigError, match="model.hiden"):
        Trainer(config)
    config = toy_config(tmp_path / "nowhere", tmp_path / "run")
    with pytest.raises(PcsegFileNotFoundError, match="nowhere"):
        Trainer(config)


def test_a_stage_starts_from_the_previous_stages_weights(toy_root, tmp_path):
    first = Trainer(toy_config(toy_root, tmp_path / "stage1", epochs=1), log=lambda *a: None)
    first.fit()
    stage1 = tmp_path / "stage1" / "last.pt"
    trained = load_checkpoint(stage1)["model"]
    second = Trainer(toy_config(toy_root, tmp_path / "stage2", epochs=1, init_from=str(stage1), seed=9),
                     log=lambda *a: None)
    start = second.model.state_dict()
    assert all(torch.equal(start[k], trained[k]) for k in trained)
    fresh = Trainer(toy_config(toy_root, tmp_path / "fresh", epochs=1, seed=9), log=lambda *a: None)
    assert not all(torch.equal(fresh.model.state_dict()[k], trained[k]) for k in trained)
    # weights of another model are refused before any work, naming the key
    other = toy_config(toy_root, tmp_path / "stage3", epochs=1, init_from=str(stage1))
    other["model"]["hidden"] = 16
    with pytest.raises(ConfigError, match="train.init_from"):
        Trainer(other, log=lambda *a: None)

def test_unreadable_checkpoints_are_described_without_torch_internals(tmp_path):
    """A text file given as a checkpoint used to report torch's 'pop from empty list'."""
    cases = {"notes.pt": (b"model: MinkUNet\nepochs: 3\n", "a text file, not a checkpoint"),
             "empty.pt": (b"", "the file is empty"),
             "cut.pt": (None, "damaged or truncated torch archive"),
             "noise.pt": (bytes(range(256)) * 4, "not a torch checkpoint")}
    good = save_checkpoint(tmp_path / "good.pt", {"config": {}, "label_map": {}, "model": {"w": torch.ones(1000)}})
    for name, (data, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(good.read_bytes()[:300] if data is None else data)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        message = str(info.value)
        assert message == f"checkpoint {path}: not a readable pcseg checkpoint ({message.split('(', 1)[1]}"
        assert expected in message and "pop from" not in message and "PytorchStreamReader" not in message
