"""Training throughput (scans/s) and inference time per ~123k-point scan, both model families.

    python benchmarks/bench_engine.py [--steps 6] [--configs configs/synthetic_minkunet.yaml ...]

Training: the shipped synthetic configs (synthetic HDL-64 scans, ~122k points each, with each
config's subsampling), timed over ``--steps`` optimizer steps after one warm-up step.
Inference: ``Segmenter`` with the config's model (random weights: speed does not depend on
them; point models run in ``num_points`` pieces as trained), median of 2 after a warm-up, on the real SemanticKITTI scan in ../shared/data (123,389 points), else a synthetic scan.
Prints a table; the numbers go into benchmarks/RESULTS.md ("Training and inference").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
REAL_SCAN = REPO.parent / "shared" / "data" / "semantickitti" / "sequences" / "08" / "velodyne" / "000000.bin"


def _scan():
    from pcseg.io import read_points
    from pcseg.synth import lidar_scan

    if REAL_SCAN.is_file():
        return read_points(REAL_SCAN), "real SemanticKITTI 08/000000"
    return lidar_scan(0), "synthetic hdl64 seed 0"


def bench_config(path: Path, steps: int, cloud, device: str):
    from pcseg.engine.config import load_config
    from pcseg.engine.segmenter import Segmenter
    from pcseg.engine.trainer import Trainer

    with tempfile.TemporaryDirectory() as out:
        config = load_config(path, [f"train.out_dir={out}", "train.progress=false", "train.tensorboard=false",
                                    f"train.device={device}"])
        trainer = Trainer(config, log=lambda *a: None)
        loader = iter(trainer._loader(trainer.train_set, config["train"]["batch_size"], True, 0))
        batches = [next(loader) for _ in range(min(steps + 1, trainer.steps_per_epoch))]
        trainer.train_step(batches[0])  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for batch in batches[1:]:
            trainer.train_step(batch)
        if device == "cuda":
            torch.cuda.synchronize()
        train_time = time.perf_counter() - start
        scans = sum(len(b["offsets"]) for b in batches[1:])
        points = np.mean([len(b["xyz"]) / len(b["offsets"]) for b in batches[1:]])

        seg = Segmenter(trainer.model, trainer.label_map, config["dataset"]["features"], device=device,
                        num_points=config["dataset"]["num_points"], block_size=config["dataset"]["block_size"])
        seg(cloud)  # warm-up
        times = []
        for _ in range(2):
            start = time.perf_counter()
            seg(cloud)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return scans / train_time, points, float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", nargs="+", default=[str(REPO / "configs" / "synthetic_minkunet.yaml"),
                                                        str(REPO / "configs" / "synthetic_pointnet2.yaml")])
    args = parser.parse_args()
    cloud, what = _scan()
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"inference scan: {what} ({len(cloud)} points)")
    print(f"{'config':<28} {'train scans/s':>14} {'pts/scan (train)':>17} {'infer s/scan':>13}")
    for path in args.configs:
        rate, points, infer = bench_config(Path(path), args.steps, cloud, args.device)
        print(f"{Path(path).stem:<28} {rate:>14.2f} {points:>17.0f} {infer:>13.3f}")


if __name__ == "__main__":
    main()
