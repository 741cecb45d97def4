"""Fuzz pcseg's point-cloud readers with byte-mutated copies of a valid file of every format.

    python benchmarks/fuzz_readers.py --cases 2000 [--seed 0] [--timeout 20] [--keep DIR]

Every supported suffix gets one small valid seed file (made here, no data needed); each case is a
mutation of one seed (bit flips, truncation, spliced garbage, zeroed header bytes, a duplicated
tail, a header number replaced by an extreme one, an extreme integer written into the first
bytes). Cases are read by ``read_points`` in a worker process with a time limit per case; a worker
that crashes or hangs is recorded and replaced. The only acceptable outcomes are a cloud with
finite coordinates (``ok``) or a pcseg error naming the file (``refused``); everything else
(``foreign`` exception, ``unnamed`` pcseg error, ``nonfinite`` cloud, ``crash``, ``hang``) is a
failure. Prints a table of outcomes per format and exits 1 when any case failed.

``tests/test_io_fuzz.py`` runs a small fixed subset of this in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GOOD = ("ok", "refused")
OUTCOMES = ("ok", "refused", "foreign", "unnamed", "nonfinite", "crash", "hang")
MUTATIONS = ("bitflip", "truncate", "splice", "zero_header", "dup_tail", "header_number", "header_int")


# --------------------------------------------------------------------------- seed files
def make_seeds(folder: Path, n: int = 300) -> dict[str, Path]:
    """One valid file per format (name -> path), ``n`` points each, written by pcseg, laspy,
    h5py and by hand (PCD). Formats needing a missing optional package are left out."""
    from pcseg.io import PointCloud, write_points

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-30, 30, (n, 3)).astype(np.float32)
    intensity = rng.uniform(0, 1, n).astype(np.float32)
    labels = rng.integers(0, 20, n)
    cloud = PointCloud(xyz=xyz, intensity=intensity, rgb=rng.uniform(0, 1, (n, 3)).astype(np.float32),
                       labels=labels)
    seeds = {}
    for name in ("ply", "npy", "npz", "bin"):
        seeds[name] = write_points(folder / f"seed.{name}", cloud)
    seeds["ply_ascii"] = write_points(folder / "seed_ascii.ply", cloud, ascii=True)
    table = np.column_stack([xyz, intensity, labels])
    np.savetxt(folder / "seed.txt", table, fmt="%.6f %.6f %.6f %.4f %d")
    seeds["txt"] = folder / "seed.txt"
    header = ("# .PCD v0.7\nVERSION 0.7\nFIELDS x y z intensity label\nSIZE 4 4 4 4 4\nTYPE F F F F U\n"
              f"COUNT 1 1 1 1 1\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA ")
    (folder / "seed_ascii.pcd").write_text(header + "ascii\n" + "\n".join(
        f"{a:.5f},{b:.5f},{c:.5f}\t{i:.4f} {lab}" for (a, b, c), i, lab in zip(xyz, intensity, labels)) + "\n")
    seeds["pcd_ascii"] = folder / "seed_ascii.pcd"
    records = np.empty(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("i", "<f4"), ("l", "<u4")])
    for key, col in zip(records.dtype.names, (xyz[:, 0], xyz[:, 1], xyz[:, 2], intensity, labels)):
        records[key] = col
    (folder / "seed.pcd").write_bytes((header + "binary\n").encode() + records.tobytes())
    seeds["pcd"] = folder / "seed.pcd"
    try:
        import open3d as o3d

        pcd = o3d.t.geometry.PointCloud()
        pcd.point["positions"] = o3d.core.Tensor(xyz)
        pcd.point["intensity"] = o3d.core.Tensor(intensity[:, None])
        o3d.t.io.write_point_cloud(str(folder / "seed_lzf.pcd"), pcd, compressed=True)
        seeds["pcd_lzf"] = folder / "seed_lzf.pcd"
    except ImportError:
        pass
    try:
        import laspy

        las_header = laspy.LasHeader(point_format=3, version="1.2")
        las_header.scales, las_header.offsets = [0.001] * 3, [500000.0, 4000000.0, 0.0]
        las = laspy.LasData(las_header)
        las.x, las.y, las.z = xyz[:, 0] + 500000.0, xyz[:, 1] + 4000000.0, xyz[:, 2]
        las.intensity = (intensity * 65535).astype(np.uint16)
        las.classification = labels.astype(np.uint8)
        las.write(str(folder / "seed.las"))
        seeds["las"] = folder / "seed.las"
        if laspy.LazBackend.detect_available():
            las.write(str(folder / "seed.laz"))
            seeds["laz"] = folder / "seed.laz"
    except ImportError:
        pass
    try:
        import h5py

        with h5py.File(folder / "seed.h5", "w") as handle:
            handle["xyz"], handle["intensity"], handle["labels"] = xyz, intensity, labels
        seeds["h5"] = folder / "seed.h5"
    except ImportError:
        pass
    return seeds


# --------------------------------------------------------------------------- mutations
def mutate(data: bytes, rng: random.Random, kind: str | None = None) -> tuple[str, bytes]:
    """One byte-level mutation of ``data``; returns (mutation name, mutated bytes)."""
    kind = kind or rng.choice(MUTATIONS)
    out = bytearray(data)
    head = min(len(out), 1024)
    if kind == "bitflip":
        for _ in range(rng.randint(1, 16)):
            pos = rng.randrange(len(out))
            out[pos] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        out = out[: rng.randrange(len(out))]
    elif kind == "splice":
        pos, size = rng.randrange(len(out)), rng.randint(1, 256)
        garbage = bytes(rng.randrange(256) for _ in range(size))
        if rng.random() < 0.5:
            out[pos:pos] = garbage  # inserted
        else:
            out[pos:pos + size] = garbage  # overwritten
    elif kind == "zero_header":
        start = rng.randrange(head)
        end = min(head, start + rng.randint(1, 256))
        out[start:end] = bytes(end - start)
    elif kind == "dup_tail":
        size = rng.randint(1, max(1, len(out) // 2))
        out += out[-size:] * rng.randint(1, 3)
    elif kind == "header_number":  # a decimal number in a text header becomes an extreme one
        digits = [i for i in range(head) if chr(out[i]).isdigit() and (i == 0 or not chr(out[i - 1]).isdigit())]
        if digits:
            start = rng.choice(digits)
            end = start
            while end < len(out) and chr(out[end]).isdigit():
                end += 1
            out[start:end] = rng.choice([b"0", b"-1", b"4294967295", b"99999999999", b"2147483648", b"7"])
        else:
            kind = "header_int"
    if kind == "header_int":  # an extreme little-endian integer written into the first bytes
        pos = rng.randrange(max(1, min(len(out), 400) - 4))
        value = rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, rng.randrange(2**32)])
        out[pos:pos + 4] = value.to_bytes(4, "little")
    return kind, bytes(out)


def plan(seeds: dict[str, Path], cases: int, seed: int) -> list[dict]:
    """``cases`` mutation cases spread evenly over the seed files, deterministic for ``seed``."""
    rng = random.Random(seed)
    names = sorted(seeds)
    out = []
    for i in range(cases):
        fmt = names[i % len(names)]
        kind, data = mutate(seeds[fmt].read_bytes(), rng)
        out.append({"case": i, "format": fmt, "mutation": kind, "suffix": seeds[fmt].suffix, "data": data})
    return out


# --------------------------------------------------------------------------- worker
# reads one path per stdin line, prints one JSON outcome per line
_WORKER = r"""
import json, sys
import numpy as np
from pcseg.errors import PcsegError
from pcseg.io import read_points
for line in sys.stdin:
    path = line.rstrip("\n")
    try:
        cloud = read_points(path)
        xyz = np.asarray(cloud.xyz)
        good = xyz.ndim == 2 and xyz.shape[1] == 3 and len(xyz) > 0 and bool(np.isfinite(xyz).all())
        result = {"outcome": "ok" if good else "nonfinite", "points": int(len(xyz))}
    except PcsegError as exc:
        result = {"outcome": "refused" if path in str(exc) else "unnamed", "message": str(exc)[:300]}
    except Exception as exc:
        result = {"outcome": "foreign", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}
    print(json.dumps(result), flush=True)
"""


class Worker:
    """A ``read_points`` worker process; restarted after a crash or hang."""

    def __init__(self, script: str = _WORKER):
        self.proc = None
        self.script = script

    def _start(self):
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-c", self.script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, cwd=str(REPO), env=env, bufsize=1)

    def read(self, path: Path, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            return {"outcome": "hang", "message": f"no answer within {timeout} s"}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            return {"outcome": "crash", "message": f"worker exit status {code}"}
        return json.loads(line)

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def run_cases(cases: list[dict], folder: Path, timeout: float, keep: Path | None = None, progress=None,
              script: str = _WORKER) -> list[dict]:
    """Write each case under ``folder`` and read it in a worker running ``script``; returns the
    cases with their outcomes."""
    worker = Worker(script)
    results = []
    try:
        for case in cases:
            path = folder / f"case{case['case']:05d}{case['suffix']}"
            path.write_bytes(case["data"])
            result = {k: v for k, v in case.items() if k != "data"}
            result.update(worker.read(path, timeout))
            if result["outcome"] not in GOOD and keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                (keep / path.name).write_bytes(case["data"])
            path.unlink()
            results.append(result)
            if progress:
                progress(len(results), len(cases))
    finally:
        worker.close()
    return results


def tally(results: list[dict]) -> str:
    """A table: one row per format, one column per outcome, and a total row."""
    formats = sorted({r["format"] for r in results})
    lines = [f"{'format':<10}" + "".join(f"{o:>10}" for o in OUTCOMES)]
    for fmt in formats + ["total"]:
        rows = [r for r in results if fmt in ("total", r["format"])]
        lines.append(f"{fmt:<10}" + "".join(f"{sum(r['outcome'] == o for r in rows):>10}" for o in OUTCOMES))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points", type=int, default=2000, help="points per seed file")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the failing cases in")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pcseg-fuzz-") as tmp:
        seeds = make_seeds(Path(tmp) / "seeds", args.points)
        cases = plan(seeds, args.cases, args.seed)
        step = max(1, args.cases // 20)
        results = run_cases(cases, Path(tmp), args.timeout, args.keep,
                            progress=lambda i, n: print(f"  {i}/{n}", file=sys.stderr) if i % step == 0 else None)
    elapsed = time.perf_counter() - started
    print(f"pcseg reader fuzzing: {args.cases} cases, seed {args.seed}, {len(seeds)} seed files of {args.points} points "
          f"({', '.join(sorted(seeds))}), {elapsed:.0f} s")
    print(tally(results))
    bad = [r for r in results if r["outcome"] not in GOOD]
    for r in bad[:20]:
        print(f"FAIL case {r['case']} {r['format']} {r['mutation']}: {r['outcome']} {r.get('message', '')}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
