"""Thread count vs speed on a shared CPU: ``Segmenter`` and a training step at 1, 2 and automatic
threads, with and without a competing CPU-bound process, plus where ``Segmenter``'s time goes.

    python benchmarks/bench_threads.py [--rounds 5] [--policies default,passive] [--settings 1,2,auto]

Every configuration runs in a worker process of its own OpenMP wait policy (``default``: torch's
libgomp as it comes, threads spin a while at each barrier; ``passive``: ``OMP_WAIT_POLICY=PASSIVE``,
what the ``pcseg`` CLI sets; ``spinN``: ``GOMP_SPINCOUNT=N``), all kept alive side by side. Each round visits every (policy,
workload, threads) cell once in shuffled order, first with no extra load and then with a busy-loop
child process this script starts (or the other way round, alternating), so all cells see the same
machine conditions. Times are wall clock (what a user waits), median and best over the rounds.
The load that other users put on the machine is printed (``os.getloadavg``) before and after:
"no competitor" means no competitor *of this script's*.

Workloads: ``segment``: ``Segmenter(...)(cloud)`` on the in-memory scan with the bundled MinkUNet
(what ``pcseg segment`` / ``demo`` run per scan); ``train``: one optimizer step (forward, CE +
Lovasz loss, backward, AdamW) of a MinkUNet on the same scan with its real labels.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCAN = REPO.parent / "shared" / "data" / "semantickitti" / "sequences" / "08" / "velodyne" / "000000.bin"
BUSY_LOOP = "while True:\n    pass\n"


# ---------------------------------------------------------------------------------------- worker
class _Worker:
    """Holds the models and the scan; answers one JSON command per line on stdin."""

    def __init__(self, args):
        import numpy as np
        import torch

        from pcseg.engine.segmenter import Segmenter
        from pcseg.io import LabelMap, read_labels, read_points
        from pcseg.models import MinkUNet
        from pcseg.pretrained import checkpoint_path

        self.scan = Path(args.scan)
        self.cloud = read_points(self.scan)
        self.seg = Segmenter.from_checkpoint(checkpoint_path("minkunet"))
        self.thread_limit = torch.get_num_threads()
        label_path = self.scan.parent.parent / "labels" / (self.scan.stem + ".label")
        lmap = LabelMap.builtin("semantickitti")
        if label_path.is_file():
            labels = lmap.to_train(read_labels(label_path))
        else:
            labels = np.random.default_rng(0).integers(1, 20, len(self.cloud))
        torch.manual_seed(0)
        layers = "18" if args.train_layers == "18" else [int(args.train_layers)] * 8
        self.net = MinkUNet(20, 4, voxel_size=args.train_voxel, layers=layers, width=args.train_width).train()
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=1e-3)
        self.batch = (torch.from_numpy(self.cloud.xyz), torch.from_numpy(
            np.column_stack([self.cloud.xyz, self.cloud.intensity]).astype(np.float32)),
            torch.tensor([len(self.cloud)]), torch.from_numpy(np.asarray(labels, dtype=np.int64)))

    def threads_for(self, setting) -> int:
        from pcseg.threads import auto_threads

        return auto_threads(limit=self.thread_limit) if setting == "auto" else int(setting)

    def segment(self, setting):
        from pcseg.threads import parse_threads

        chosen = self.threads_for(setting)
        self.seg.threads = parse_threads(setting)
        t0 = time.perf_counter()
        self.seg(self.cloud)
        return {"seconds": time.perf_counter() - t0, "threads": chosen}

    def train(self, setting):
        from pcseg.engine.losses import lovasz_sum, masked_targets, weighted_ce_sum
        from pcseg.threads import torch_threads

        t0 = time.perf_counter()
        count = self.threads_for(setting)  # inside the timing: the trainer chooses every step
        with torch_threads(count):
            xyz, feats, offsets, labels = self.batch
            targets = masked_targets(labels, [0], 20)
            logits = self.net.forward_ragged(xyz, feats, offsets)
            ce, ce_norm = weighted_ce_sum(logits, targets)
            lov, lov_norm = lovasz_sum(logits, targets, offsets)
            loss = ce / ce_norm.clamp_min(1e-12) + lov / lov_norm.clamp_min(1e-12)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return {"seconds": time.perf_counter() - t0, "threads": count}

    def stages(self, setting):
        """Seconds of each step of ``Segmenter.__call__`` done by hand, and of the call itself."""
        import numpy as np
        import torch

        from pcseg.datasets.features import build_features
        from pcseg.engine.inference import mask_ignored
        from pcseg.io import read_points
        from pcseg.sparse import voxel_to_point
        from pcseg.threads import parse_threads, torch_threads

        out, model, ignore = {}, self.seg.model, self.seg.label_map.ignore_index

        def lap(name, t0):
            out[name] = time.perf_counter() - t0
            return time.perf_counter()

        count = self.threads_for(setting)
        with torch_threads(count), torch.no_grad():
            t = time.perf_counter()
            cloud = read_points(self.scan)
            t = lap("read", t)
            feats = torch.from_numpy(build_features(cloud.xyz, cloud, self.seg.features))
            xyz, offsets = torch.from_numpy(cloud.xyz), torch.tensor([len(cloud)])
            t = lap("features", t)
            x, inverse = model.voxelize(xyz, feats, offsets)
            t = lap("voxelize", t)
            logits = model.forward_sparse(x).feats
            t = lap("network", t)
            labels = mask_ignored(logits, ignore).argmax(1).index_select(0, inverse).numpy()
            t = lap("argmax per voxel + copy to points", t)
            point_logits = voxel_to_point(logits, inverse)
            proba = torch.softmax(mask_ignored(point_logits, ignore), 1)
            old = proba.numpy().argmax(1)
            t = lap("(before: copy to points, softmax, argmax)", t)
            assert np.array_equal(old, labels)
        self.seg.threads = parse_threads(setting)
        t = time.perf_counter()
        self.seg(self.cloud)
        lap("Segmenter(cloud) end to end", t)
        out["voxels"] = int(x.coords.shape[0])
        return out


def _serve(args) -> int:
    worker = _Worker(args)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        result = getattr(worker, cmd["task"])(cmd["setting"])
        print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------------------- driver
class _Pool:
    def __init__(self, policies, args):
        self.procs = {}
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "--scan", str(args.scan),
                "--train-voxel", str(args.train_voxel), "--train-width", str(args.train_width),
                "--train-layers", str(args.train_layers)]
        for policy in policies:
            env = dict(os.environ)
            env.pop("OMP_WAIT_POLICY", None)
            env.pop("GOMP_SPINCOUNT", None)
            if policy.startswith("spin"):
                env["GOMP_SPINCOUNT"] = policy[4:]
            elif policy != "default":
                env["OMP_WAIT_POLICY"] = policy.upper()
            env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
            self.procs[policy] = proc
        for policy, proc in self.procs.items():
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker for policy {policy} failed to start")

    def ask(self, policy, task, setting):
        proc = self.procs[policy]
        proc.stdin.write(json.dumps({"task": task, "setting": setting}) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker for policy {policy} died")
        return json.loads(line)

    def close(self):
        for proc in self.procs.values():
            proc.stdin.close()
            proc.wait(timeout=30)


def _competitor():
    proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    time.sleep(0.3)  # let it start spinning before the first timed call
    return proc


def _stop(proc):
    if proc is not None:
        proc.kill()
        proc.wait()


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--policies", default="default,passive", help="OpenMP wait policies: default, passive, active, spinN (GOMP_SPINCOUNT=N)")
    ap.add_argument("--settings", default="1,2,auto", help="thread settings to compare")
    ap.add_argument("--workloads", default="segment,train")
    ap.add_argument("--scan", default=str(SCAN))
    ap.add_argument("--train-voxel", type=float, default=0.4, help="voxel size of the trained MinkUNet (m)")
    ap.add_argument("--train-width", type=float, default=0.5)
    ap.add_argument("--train-layers", default="1", help="blocks per stage (an int) or 18")
    ap.add_argument("--no-stages", action="store_true", help="skip the Segmenter time breakdown")
    ap.add_argument("--skip", default="", help="cells not to time, e.g. default:train:2 (comma-separated "
                                               "policy:workload:threads); they print as 'skipped'")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return _serve(args)
    if not Path(args.scan).is_file():
        print(f"scan not found: {args.scan}", file=sys.stderr)
        return 1
    policies = args.policies.split(",")
    settings = args.settings.split(",")
    workloads = args.workloads.split(",")
    skip = set(filter(None, args.skip.split(",")))
    print(f"bench_threads: {os.cpu_count()} cores, commit {_commit()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"before: {_load()}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so `finally` stops the busy child
    pool = _Pool(policies, args)
    times: dict = {}
    chosen: dict = {}
    stages: dict = {}
    rng = random.Random(0)
    competitor = None
    try:
        for r in range(args.rounds):
            for competing in ((False, True) if r % 2 == 0 else (True, False)):
                competitor = _competitor() if competing else None
                cells = [(p, w, s) for p in policies for w in workloads for s in settings
                         if f"{p}:{w}:{s}" not in skip]
                rng.shuffle(cells)
                for policy, workload, setting in cells:
                    result = pool.ask(policy, workload, setting)
                    key = (workload, policy, setting, competing)
                    times.setdefault(key, []).append(result["seconds"])
                    chosen.setdefault(key, []).append(result["threads"])
                if not args.no_stages:
                    for setting in ("1", "2"):
                        result = pool.ask(policies[0], "stages", setting)
                        for name, value in result.items():
                            stages.setdefault((setting, competing, name), []).append(value)
                _stop(competitor)
                competitor = None
            print(f"\nafter round {r + 1}/{args.rounds}: {_load()}", flush=True)
            _print_tables(times, chosen, stages, policies, settings, workloads)
    finally:
        _stop(competitor)
        pool.close()
    return 0


def _print_tables(times, chosen, stages, policies, settings, workloads):
    med = {k: statistics.median(v) for k, v in times.items()}
    for workload in workloads:
        print(f"\n{workload}: wall seconds, median (best) over rounds", flush=True)
        print(f"{'policy':<9}{'threads':<9}{'no competitor':>22}{'+1 busy process':>22}")
        for policy in policies:
            for setting in settings:
                cols = []
                for competing in (False, True):
                    key = (workload, policy, setting, competing)
                    if key not in times:
                        cols.append("skipped")
                        continue
                    used = sorted(set(chosen[key]))
                    tag = f" [{'/'.join(map(str, used))}]" if setting == "auto" else ""
                    cols.append(f"{med[key]:.3f} ({min(times[key]):.3f}){tag}")
                print(f"{policy:<9}{setting:<9}{cols[0]:>22}{cols[1]:>22}")
        for competing in (False, True):
            best = min((med[(workload, p, s, competing)], p, s) for p in policies for s in settings
                       if s != "auto" and (workload, p, s, competing) in med)
            where = "+1 busy process" if competing else "no competitor"
            parts = [f"{p} auto {med[(workload, p, 'auto', competing)] / best[0]:.2f}x"
                     for p in policies if (workload, p, "auto", competing) in med]
            print(f"  {where}: best fixed = {best[1]} {best[2]} threads ({best[0]:.3f} s); " + ", ".join(parts))
    if stages:
        names = [n for (s, c, n) in stages if s == "1" and c is False]
        print("\nSegmenter stages (first policy), wall ms, median over rounds")
        print(f"{'stage':<44}" + "".join(f"{f'{s} thr' + (' +busy' if c else ''):>14}" for s in ('1', '2')
                                         for c in (False, True)))
        for name in names:
            cells = []
            for s in ("1", "2"):
                for c in (False, True):
                    values = stages.get((s, c, name))
                    scale = 1 if name == "voxels" else 1e3
                    cells.append(f"{statistics.median(values) * scale:>14.1f}" if values else f"{'-':>14}")
            print(f"{name:<44}" + "".join(cells))


if __name__ == "__main__":
    sys.exit(main())
