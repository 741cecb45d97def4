"""benchmarks/bench_models.py runs end to end (tiny) and reports each shipped config's model."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_models_smoke_run(capsys):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_models
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert bench_models.main(["--points", "2000", "--repeats", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "2000 points" in out
    for name in bench_models.MODELS:
        rows = [line.split() for line in out.splitlines() if line.startswith(name + " ")]
        assert len(rows) == 1, name
        params = sum(p.numel() for p in bench_models.build(name).parameters())
        assert int(rows[0][1]) == params and rows[0][2] == "1"
