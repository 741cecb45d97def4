"""How the real-time network was chosen: candidate architectures on the real HDL-64 scan.

    python benchmarks/bench_realtime_candidates.py [--repeats 5]

Each candidate (untrained weights: time does not depend on them, only on the voxel count and the
widths) and the bundled default outdoor model label the real 123,389-point scan
../shared/data/semantickitti/sequences/08/velodyne/000000.bin end to end through ``Segmenter``
(xyz input, SemanticKITTI classes), with 1 and then 2 torch threads. CPU ms is process CPU time
(all threads), wall ms the time a caller waits; best and median of ``--repeats`` calls.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's pcseg, not another installed copy
SCAN = REPO.parent / "shared" / "data" / "semantickitti" / "sequences" / "08" / "velodyne" / "000000.bin"

CANDIDATES = {
    "outdoor (bundled)": None,
    "FastVoxelNet 0.4 m 16-64": dict(name="FastVoxelNet", voxel_size=0.4, channels=[16, 32, 48, 64], point_channels=16),
    "FastVoxelNet 0.3 m 24-96": dict(name="FastVoxelNet", voxel_size=0.3, channels=[24, 48, 64, 96], point_channels=16),
    "MinkUNet 0.25 m w0.5": dict(name="MinkUNet", voxel_size=0.25, layers=[1] * 8, width=0.5),
    "MinkUNet 0.2 m w0.375": dict(name="MinkUNet", voxel_size=0.2, layers=[1] * 8, width=0.375),
}


def main(argv=None) -> int:
    from pcseg.engine.builders import build_model
    from pcseg.engine.segmenter import Segmenter
    from pcseg.io import LabelMap, read_points
    from pcseg.pretrained import checkpoint_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if not SCAN.is_file():
        print(f"needs the real scan {SCAN} (../shared/data)")
        return 1
    cloud = read_points(SCAN)
    label_map = LabelMap.builtin("semantickitti")
    segs = {}
    for name, cfg in CANDIDATES.items():
        if cfg is None:
            segs[name] = Segmenter.from_checkpoint(checkpoint_path("outdoor"), threads=1)
        else:
            model = build_model(dict(cfg), label_map.num_classes, 3).eval()
            segs[name] = Segmenter(model, label_map, ["xyz"], threads=1)
    print(f"scan {SCAN.name}: {cloud.xyz.shape[0]} points")
    print(f"{'candidate':<26} {'params':>8} {'threads':>7} {'CPU ms best':>11} {'CPU ms med':>10} "
          f"{'wall ms best':>12} {'wall ms med':>11}")
    for threads in (1, 2):
        for name, seg in segs.items():
            seg.threads = threads
            seg(cloud)  # warm-up
            cpu, wall = [], []
            for _ in range(args.repeats):
                c0, w0 = time.process_time(), time.perf_counter()
                seg(cloud)
                cpu.append(1e3 * (time.process_time() - c0))
                wall.append(1e3 * (time.perf_counter() - w0))
            params = sum(p.numel() for p in seg.model.parameters())
            print(f"{name:<26} {params:>8} {threads:>7} {min(cpu):>11.1f} {statistics.median(cpu):>10.1f} "
                  f"{min(wall):>12.1f} {statistics.median(wall):>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
