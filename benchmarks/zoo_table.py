"""Every pcseg network trained with the same data and budget: the side-by-side table of issue 19.

    python benchmarks/zoo_table.py probe                  # training s/step of each model (a few steps)
    python benchmarks/zoo_table.py train --epochs 8       # one run per model, one after another
    python benchmarks/zoo_table.py score                  # accuracy, memory, CPU time under the load of now
    python benchmarks/zoo_table.py score --timing-only    # only the ms per scan (rerun on an idle machine)

Data recipe for every model: configs/outdoor_minkunet_pretrain.yaml, the outdoor model's synthetic
pretraining (generated HDL-64 scans of all road types, its augmentation, xyz input, batch 2,
AdamW + one-cycle at lr 0.01, seed 10), with only its ``model:`` section replaced by the model
section of that network's own pcseg config (MODELS), the same number of epochs (72 scans each) for
every model, one thread, into runs/zoo_<model>. Where a network needs more than its model section
it says so in MODELS (PointNet++ trains on sampled scans; PTv3 takes its own optimizer settings).

Scores: mIoU over the classes present on the trainer's 4 held-out generated scans, and on the six
real frames of ../shared/data (``Segmenter(recenter=True)``, one confusion matrix per recording as
benchmarks/loo_outdoor.py scores its folds, then their mean; no run saw a real frame), parameters,
training scans/s (the run's log.csv: total scans / total epoch time), peak RSS of the training
process (VmHWM, from wait4) and of a fresh process labeling the real scan 08/000000
(bench_realtime.measure), CPU and wall ms per scan on 1 and 2 threads with the load average beside.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's pcseg, not another installed copy
sys.path.insert(0, str(REPO / "benchmarks"))
from loo_outdoor import RECORDINGS, recording_confusion  # noqa: E402

RECIPE = REPO / "configs" / "outdoor_minkunet_pretrain.yaml"
SCENES = yaml.safe_load(RECIPE.read_text())["dataset"]["train_split"]  # generated scans per epoch
CONFIGS = REPO / "configs"
# model -> (config whose model section it trains, extra overrides the network needs)
MODELS = {
    "minkunet": ("outdoor_minkunet_pretrain.yaml", []),   # the outdoor model: 0.15 m, layers 1, width 0.5
    "spvcnn": ("synthetic_spvcnn.yaml", []),
    "ptv3": ("synthetic_ptv3.yaml", ["train.lr=0.002", "train.weight_decay=0.05"]),  # as its config: smaller step
    "fastvoxelnet": ("realtime_fastvoxelnet.yaml", []),
    "pointnet2": ("semantickitti_pointnet2.yaml", ["dataset.num_points=16384"]),  # sampled scans, as its config
}


def run_dir(model: str, seed=None) -> Path:
    """runs/zoo_<model>, or runs/zoo_<model>_seed<N> for a run with another training seed."""
    return REPO / "runs" / (f"zoo_{model}" if seed is None else f"zoo_{model}_seed{seed}")


def zoo_config(model: str, out_dir: Path) -> Path:
    """The recipe with its model section replaced by ``model``'s (written beside the run: pcseg's
    --set changes keys, not whole sections); everything else is read from the recipe itself."""
    recipe = yaml.safe_load(RECIPE.read_text())
    recipe["model"] = yaml.safe_load((CONFIGS / MODELS[model][0]).read_text())["model"]
    path = out_dir.with_suffix(".yaml")
    path.write_text(f"# {RECIPE.name} with the model section of {MODELS[model][0]} (benchmarks/zoo_table.py)\n"
                    + yaml.safe_dump(recipe, sort_keys=False))
    return path


def overrides(model: str, epochs: int, out_dir: Path) -> list[str]:
    items = [f"train.epochs={epochs}", f"train.eval_every={epochs}", "train.threads=1", "train.progress=false",
             f"train.out_dir={out_dir.relative_to(REPO)}", *MODELS[model][1]]
    return [a for item in items for a in ("--set", item)]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_training(model: str, epochs: int, out_dir: Path, extra=(), nice: int = 5, resume: bool = False) -> dict:
    """``pcseg train`` of the recipe for ``model``; returns its wait4 resource figures."""
    out_dir.parent.mkdir(exist_ok=True)
    cmd = ["nice", "-n", str(nice), sys.executable, "-m", "pcseg", "train", str(zoo_config(model, out_dir)),
           *overrides(model, epochs, out_dir), *[a for item in extra for a in ("--set", item)],
           *(["--resume"] if resume else [])]
    loads, t0 = [loadavg()], time.perf_counter()
    with open(out_dir.with_suffix(".log"), "a" if resume else "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(5)
            if len(loads) * 60 < time.perf_counter() - t0:
                loads.append(loadavg())
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"model": model, "rc": proc.returncode, "wall_s": time.perf_counter() - t0,
            "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024, "loadavg": loads}


def probe(models, steps: int) -> None:
    """Seconds per step of a short run of each model (``steps`` steps of 2 scans, no validation)."""
    import shutil

    for model in models:
        out = REPO / "runs" / f"zoo_probe_{model}"
        shutil.rmtree(out, ignore_errors=True)
        r = run_training(model, 1, out, [f"dataset.train_split={2 * steps}", "dataset.val_split=null"])
        rows = list(csv.DictReader(open(out / "log.csv"))) if (out / "log.csv").is_file() else []
        rate = float(rows[-1]["scans_per_s"]) if rows else float("nan")
        print(f"{model:<13} rc {r['rc']}  {rate:.2f} scans/s = {2 / rate:.2f} s/step  CPU {r['cpu_s']:.0f} s  "
              f"peak {r['peak_mb']:.0f} MB  load {r['loadavg'][0]}", flush=True)


def train(models, epochs: int, seed=None) -> None:
    """One run per model; a run stopped before its last epoch is resumed (``pcseg train --resume``)
    and its resource figures are added up (CPU, wall) or maxed (peak RSS)."""
    for model in models:
        out = run_dir(model, seed)
        csv_path, info = out / "log.csv", out.with_suffix(".json")
        done = int(list(csv.DictReader(open(csv_path)))[-1]["step"]) if csv_path.is_file() else 0
        if done >= epochs * SCENES // 2:  # steps of 2 scans
            print(f"{model}: {out} has its {done} steps, skipped")
            continue
        resume = (out / "last.pt").is_file()
        r = run_training(model, epochs, out, [] if seed is None else [f"train.seed={seed}"], resume=resume)
        if resume and info.is_file():
            before = json.loads(info.read_text())
            r.update(wall_s=r["wall_s"] + before["wall_s"], cpu_s=r["cpu_s"] + before["cpu_s"],
                     peak_mb=max(r["peak_mb"], before["peak_mb"]), loadavg=before["loadavg"] + r["loadavg"],
                     resumed_at_step=done)
        info.write_text(json.dumps(r, indent=1))
        print(json.dumps(r), flush=True)


def synthetic_val(ckpt: Path):
    """Present-class and trainer-style mIoU on the run's own held-out generated scans."""
    import torch

    from pcseg.engine.builders import build_dataset
    from pcseg.engine.checkpoint import load_checkpoint, model_from_checkpoint
    from pcseg.engine.trainer import evaluate_model

    payload = load_checkpoint(ckpt)
    model, label_map = model_from_checkpoint(payload, source=str(ckpt))
    config = payload["config"]
    val = build_dataset(config, "val", label_map, training=False)
    return evaluate_model(model, val, label_map, torch.device("cpu"), num_points=config["dataset"]["num_points"],
                          block_size=config["dataset"]["block_size"], threads=1)


def real_frames(ckpt: Path) -> dict:
    """Present-class mIoU of each recording of the real frames, and their mean."""
    from pcseg.engine.segmenter import Segmenter

    seg = Segmenter.from_checkpoint(ckpt, device="cpu", recenter=True, threads=1)
    out = {name: 100 * float(recording_confusion(seg, name).miou(absent="target")) for name in RECORDINGS}
    out["mean"] = float(np.mean(list(out.values())))
    return out


def timing(ckpt: Path, repeats: int) -> dict:
    """bench_realtime.measure in a fresh process: ms per scan on 1 and 2 threads, peak RSS."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_realtime.py"), "--child", str(ckpt),
           "--repeats", str(repeats), "--threads", "1", "2"]
    before = loadavg()
    r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    r["loadavg"] = [before, loadavg()]
    return r


def train_figures(model: str, seed=None) -> dict:
    rows = list(csv.DictReader(open(run_dir(model, seed) / "log.csv")))
    scans = SCENES * len(rows)  # every epoch draws each of the recipe's scenes once
    seconds = sum(float(r["time"]) for r in rows)
    figures = {"steps": int(rows[-1]["step"]), "scans": scans, "scans_per_s": scans / seconds,
               "best_epoch_scans_per_s": max(float(r["scans_per_s"]) for r in rows),
               "trainer_val_miou": 100 * float(rows[-1].get("val_miou") or "nan")}
    info = run_dir(model, seed).with_suffix(".json")
    if info.is_file():
        figures.update({f"train_{k}": v for k, v in json.loads(info.read_text()).items() if k != "model"})
        # scans per CPU-second of the whole process (start-up and final validation included): the
        # load-independent speed; wall scans/s on this shared machine depends on the other jobs
        figures["scans_per_cpu_s"] = scans / figures["train_cpu_s"]
    return figures


def score(models, timing_only: bool, repeats: int, seed=None) -> None:
    results_path = REPO / "runs" / "zoo_table.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for model in models:
        ckpt = run_dir(model, seed) / "last.pt"
        if not ckpt.is_file():
            print(f"{model}: no {ckpt}")
            continue
        row = results.setdefault(model if seed is None else f"{model}_seed{seed}", {})
        if not timing_only:
            row.update(train_figures(model, seed))
            row["synthetic_val_miou"] = 100 * float(synthetic_val(ckpt).miou(absent="target"))
            row["real"] = real_frames(ckpt)
        row["timing"] = timing(ckpt, repeats)
        results_path.write_text(json.dumps(results, indent=1))
        print(model, json.dumps(row), flush=True)
    print_table(results)


def print_table(results: dict) -> None:
    print(f"\n{'model':<13} {'params':>9} {'steps':>5} {'syn val':>7} {'real':>5} {'k01':>5} {'demo':>5} {'k08':>5} "
          f"{'CPU ms 1t':>9} {'CPU ms 2t':>9} {'wall 2t':>7} {'sc/CPU-s':>8} {'sc/s best':>9} {'train MB':>8} {'label MB':>8} load")
    for model, r in results.items():
        t = r["timing"]["times"]
        real = r.get("real", {})
        print(f"{model:<13} {r['timing']['params']:>9} {r.get('steps', 0):>5} {r.get('synthetic_val_miou', float('nan')):>7.1f} "
              f"{real.get('mean', float('nan')):>5.1f} {real.get('kitti01', float('nan')):>5.1f} "
              f"{real.get('demo', float('nan')):>5.1f} {real.get('kitti08', float('nan')):>5.1f} "
              f"{t['1']['cpu_med']:>9.1f} {t['2']['cpu_med']:>9.1f} {t['2']['wall_med']:>7.1f} "
              f"{r.get('scans_per_cpu_s', float('nan')):>8.2f} {r.get('best_epoch_scans_per_s', float('nan')):>9.2f} {r.get('train_peak_mb', float('nan')):>8.0f} "
              f"{r['timing']['peak_mb']:>8.0f} {' / '.join(r['timing']['loadavg'])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["probe", "train", "score", "table"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=8, help="epochs of 72 scans = 36 steps of 2 scans each")
    parser.add_argument("--steps", type=int, default=4, help="probe: steps of 2 scans")
    parser.add_argument("--timing-only", action="store_true", help="score: only the ms per scan and labeling memory")
    parser.add_argument("--seed", type=int, default=None,
                        help="train.seed of a repeat run (runs/zoo_<model>_seed<N>); default: the recipe's")
    parser.add_argument("--repeats", type=int, default=5, help="timed scans per thread count")
    args = parser.parse_args()
    if args.action == "probe":
        probe(args.models, args.steps)
    elif args.action == "train":
        train(args.models, args.epochs, args.seed)
    elif args.action == "score":
        score(args.models, args.timing_only, args.repeats, args.seed)
    else:
        print_table(json.loads((REPO / "runs" / "zoo_table.json").read_text()))


if __name__ == "__main__":
    main()
