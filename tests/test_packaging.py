"""Installed anywhere: every runtime file lives in the package and is declared as package data."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib

import pytest
import yaml

from conftest import REPO


def _tracked(prefix: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", prefix], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return out.stdout.split()


def test_package_data_covers_every_runtime_file():
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["pcseg"]
    data_files = [p for p in _tracked("pcseg") if not p.endswith(".py")]
    assert data_files, "no data files found under pcseg/"
    missing = [p for p in data_files
               if not any(fnmatch.fnmatch(p.removeprefix("pcseg/"), pattern) for pattern in patterns)]
    assert not missing, f"not declared in pyproject's package-data: {missing}"


def test_every_builtin_label_map_ships_inside_the_package():
    from pcseg.io.labelmap import BUILTIN_NAMES, LabelMap
    from pcseg.resources import label_map_file

    for name in BUILTIN_NAMES:
        path = label_map_file(name)
        assert path.is_file() and (REPO / "pcseg") in path.resolve().parents, path
        spec = yaml.safe_load(path.read_text())
        assert LabelMap.builtin(name) == LabelMap(spec, source=str(path))


def test_no_module_reaches_outside_the_package_for_files():
    # parents[2] of a module is the source tree: it does not exist after a wheel install
    offenders = []
    for path in (REPO / "pcseg").rglob("*.py"):
        text = path.read_text()
        if re.search(r"__file__\)?\.resolve\(\)\.parents\[[2-9]\]", text) or re.search(r"\"\.\./", text):
            offenders.append(str(path.relative_to(REPO)))
    assert not offenders, offenders


def test_ci_builds_and_smoke_tests_a_wheel():
    ci = (REPO / ".ci" / "run").read_text()
    assert ".ci/package_smoke" in ci
    smoke = (REPO / ".ci" / "package_smoke").read_text()
    for needed in ("pip wheel", "build_sdist", "venv", "LabelMap.builtin", "demo --out tmp"):
        assert needed in smoke, needed


@pytest.mark.slow
def test_wheel_contains_the_package_data(tmp_path):
    """A pure-Python wheel (PCSEG_NO_EXTENSION=1, no compile) holds every label map and the sample."""
    import os
    import sys
    import zipfile

    env = dict(os.environ, PCSEG_NO_EXTENSION="1", PCSEG_BUILD_DIR=str(tmp_path / "objects"))
    # build from a copy so the checkout's build/ and egg-info are left alone
    src = tmp_path / "src"
    files = _tracked(".")
    for name in files:
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_file():
            target.write_bytes((REPO / name).read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, env=env, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("pcseg-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("semantickitti", "s3dis", "scannet", "asprs"):
        assert f"pcseg/data/label_maps/{name}.yaml" in names
    assert "pcseg/data/sample_scan.bin" in names and "pcseg/pretrained/minkunet_synthetic.pt" in names
    assert not any(n.startswith("tests/") or n.startswith("datasets/") for n in names)
