"""Byte-mutated files of every format, each read in a worker process with a time limit: every
outcome is a cloud with finite coordinates or a pcseg error naming the file (no foreign exception,
crash or hang). A fixed subset of ``benchmarks/fuzz_readers.py`` (which runs thousands of cases)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
try:
    import fuzz_readers
finally:
    sys.path.pop(0)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return fuzz_readers.make_seeds(tmp_path_factory.mktemp("seeds"), n=300)


def test_seed_files_are_valid_and_cover_every_format(seeds, tmp_path):
    from pcseg.io.readers import SUPPORTED_SUFFIXES

    covered = {path.suffix for path in seeds.values()}
    # .hdf5/.xyz/.pts share the .h5/.txt readers
    assert set(SUPPORTED_SUFFIXES) - covered <= {".hdf5", ".xyz", ".pts"}
    cases = [{"case": i, "format": fmt, "mutation": "none", "suffix": path.suffix, "data": path.read_bytes()}
             for i, (fmt, path) in enumerate(sorted(seeds.items()))]
    results = fuzz_readers.run_cases(cases, tmp_path, timeout=60)
    assert [r["outcome"] for r in results] == ["ok"] * len(cases), results
    assert {r["points"] for r in results} == {300}


def test_every_mutation_changes_the_bytes(seeds):
    data = seeds["ply"].read_bytes()
    rng = random.Random(3)
    for kind in fuzz_readers.MUTATIONS:
        changed = sum(fuzz_readers.mutate(data, rng, kind)[1] != data for _ in range(5))
        assert changed >= 4, kind


def test_mutated_files_are_read_or_refused_by_name(seeds, tmp_path):
    cases = fuzz_readers.plan(seeds, 15 * len(seeds), seed=20)
    results = fuzz_readers.run_cases(cases, tmp_path, timeout=60)
    bad = [r for r in results if r["outcome"] not in fuzz_readers.GOOD]
    assert not bad, "\n" + fuzz_readers.tally(results) + "\n" + "\n".join(map(str, bad[:10]))
    assert {r["outcome"] for r in results} == {"ok", "refused"}  # the mutations do reach both


def test_the_harness_tells_crashes_hangs_and_foreign_errors(tmp_path):
    """A stand-in reader that misbehaves on purpose: each failure kind is recognised, and the
    worker is replaced after a crash or a hang so later cases still run."""
    script = r"""
import json, os, sys, time
for line in sys.stdin:
    path = line.strip()
    if path.endswith(".crash"):
        os.abort()
    if path.endswith(".hang"):
        time.sleep(60)
    outcome = {"foreign": "foreign", "refuse": "refused"}.get(path.rsplit(".", 1)[1], "ok")
    print(json.dumps({"outcome": outcome}), flush=True)
"""
    suffixes = [".refuse", ".crash", ".ok", ".hang", ".foreign", ".ok"]
    cases = [{"case": i, "format": s, "mutation": "none", "suffix": s, "data": b"x"} for i, s in enumerate(suffixes)]
    results = fuzz_readers.run_cases(cases, tmp_path, timeout=3, script=script)
    assert [r["outcome"] for r in results] == ["refused", "crash", "ok", "hang", "foreign", "ok"]
    assert "total" in fuzz_readers.tally(results)
