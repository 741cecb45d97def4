"""Configs: unknown keys name their path, overrides apply, and every shipped config validates."""

from pathlib import Path

import pytest
import yaml

from pcseg.engine.config import apply_override, load_config, validate_config
from pcseg.errors import ConfigError, PcsegFileNotFoundError

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path, config) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


BASE = {"dataset": {"name": "synthetic", "train_split": 4, "val_split": 2},
        "model": {"name": "MinkUNet"}, "train": {"lr": 0.01}}


def test_defaults_filled_and_override_applies(tmp_path):
    config = load_config(_write(tmp_path, BASE), ["train.lr=0.5", "dataset.augment.scale=[0.9, 1.1]"])
    assert config["train"]["lr"] == 0.5
    assert config["dataset"]["augment"]["scale"] == [0.9, 1.1]
    assert config["train"]["epochs"] == 10  # default
    assert config["dataset"]["features"] == ["xyz", "intensity"]


@pytest.mark.parametrize("section,key,path", [
    ("train", "lrr", "train.lrr"),
    ("dataset", "num_point", "dataset.num_point"),
])
def test_unknown_key_names_its_path(tmp_path, section, key, path):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw[section][key] = 1
    with pytest.raises(ConfigError, match=path.replace(".", r"\.")):
        load_config(_write(tmp_path, raw))


def test_unknown_nested_and_override_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset\.augment\.rotate\b"):
        load_config(_write(tmp_path, BASE), ["dataset.augment.rotate=true"])
    with pytest.raises(ConfigError, match="did you mean train.lr"):
        load_config(_write(tmp_path, BASE), ["train.lrr=0.1"])
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_override({}, "train.lr")


def test_bad_values_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="train.optimizer"):
        load_config(_write(tmp_path, BASE), ["train.optimizer=adam"])
    with pytest.raises(ConfigError, match="dataset.features"):
        load_config(_write(tmp_path, BASE), ["dataset.features=[xyz, colour]"])
    with pytest.raises(ConfigError, match="model.name"):
        validate_config({"dataset": BASE["dataset"], "train": {}})
    with pytest.raises(PcsegFileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    from pcseg.engine.registry import MODELS

    config = load_config(path)
    assert config["model"]["name"] in MODELS
