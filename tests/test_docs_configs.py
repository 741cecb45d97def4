"""The figures the docs quote about the shipped configs are the configs' own."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO


def _config(name):
    return yaml.safe_load((REPO / "configs" / name).read_text())


def _width(word):
    return {"quarter": 0.25, "half": 0.5, "full": 1.0}[word]


# (pattern, value the config must give for the captured text)
RULES = [
    (r"(\d+) synthetic", lambda c, m: c["dataset"]["train_split"] == int(m)),
    (r"\((\d+) others? for validation\)", lambda c, m: c["dataset"]["val_split"] == int(m)),
    (r"(\d+(?:\.\d+)?) m voxels", lambda c, m: c["model"]["voxel_size"] == float(m)),
    (r"(\d+) cm voxels", lambda c, m: round(c["model"]["voxel_size"] * 100) == int(m)),
    (r"(\d[\d,]*) points", lambda c, m: c["dataset"]["num_points"] == int(m.replace(",", ""))),
    (r"(quarter|half|full) width", lambda c, m: c["model"].get("width", 1.0) == _width(m)),
    (r"(\d+(?:\.\d+)?) m blocks", lambda c, m: c["dataset"]["block_size"] == float(m)),
    (r"(\d+) epochs", lambda c, m: c["train"]["epochs"] == int(m)),
    (r"(\d+) real frames", lambda c, m: len(c["dataset"]["train_split"]) == int(m)),
    (r"test area (\d+)", lambda c, m: c["dataset"]["val_split"] == [int(m)]),
    (r"MinkUNet(\d\d)", lambda c, m: str(c["model"]["layers"]) == m),
    (r"(one block per stage)", lambda c, m: set(c["model"]["layers"]) == {1}),
]


def _claims():
    """(where, config file, text) for the table of docs/training.md and the README's model card."""
    out = []
    training = (REPO / "docs" / "training.md").read_text()
    for name, data, model in re.findall(r"^\| `(\w+\.yaml)` \| (.+?) \| (.+?) \|$", training, flags=re.M):
        out.append(("docs/training.md", name, f"{data} | {model}"))
    readme = (REPO / "README.md").read_text()
    for name, text in re.findall(r"`configs/(\w+\.yaml)`\s*\(([^)]*(?:\([^)]*\)[^)]*)*)\)", readme):
        out.append(("README.md", name, " ".join(text.split())))
    return out


def test_the_docs_quote_the_shipped_configs():
    claims = _claims()
    listed = {name for where, name, _ in claims}
    assert listed and listed <= {p.name for p in (REPO / "configs").glob("*.yaml")}, "the docs name a missing config"
    checked = 0
    for where, name, text in claims:
        config = _config(name)
        for pattern, holds in RULES:
            for found in re.findall(pattern, text):
                assert holds(config, found), f"{where}: {name}: {pattern!r} says {found!r}, the config differs"
                checked += 1
    assert checked >= 15, f"only {checked} figures checked: the table format changed?"


def test_the_checker_catches_a_wrong_figure():
    config = _config("synthetic_minkunet.yaml")
    holds = dict((p, h) for p, h in RULES)
    assert not holds[r"(\d+) synthetic"](config, "16")
    assert not holds[r"(\d+(?:\.\d+)?) m voxels"](config, "0.5")
    assert not holds[r"(quarter|half|full) width"](config, "quarter")
