"""Synthetic data: generation speed, and the realism check against the real scans in ../shared/data.

    python benchmarks/bench_synth.py              # speed table + realism tables
    python benchmarks/bench_synth.py --speed      # speed only
    python benchmarks/bench_synth.py --realism    # realism only (needs ../shared/data)
    python benchmarks/bench_synth.py --learnability  # a tiny per-point classifier as a sanity check

Speed: wall time per scan/frame (best and median of several runs; the machine may be shared).
Realism: points per scan, range histogram, class fractions, and points per car at 10/20/40 m
for synthetic HDL-64 scans next to the real SemanticKITTI scans; valid depth and depth
percentiles of synthetic RGB-D frames next to the real TUM frame.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RANGE_BINS = [0, 5, 10, 20, 30, 40, 60, 80, 120]


def timed(fn, repeats):
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def speed(repeats: int = 5) -> None:
    from pcseg.synth.indoor import depth_frame
    from pcseg.synth.lidar import lidar_scan
    from pcseg.synth.street import build_street

    print(f"{'what':44s} {'best s':>8s} {'median s':>9s} {'points':>9s}")
    for seed in (0, 1, 2):
        best, med, cloud = timed(lambda: lidar_scan(seed, sensor="hdl64"), repeats)
        print(f"{f'lidar_scan(seed={seed}, hdl64) incl. scene':44s} {best:8.3f} {med:9.3f} {len(cloud):9d}")
    best, med, _ = timed(lambda: build_street(0), repeats)
    print(f"{'  of which build_street(seed=0)':44s} {best:8.3f} {med:9.3f} {'':>9s}")
    for sensor in ("vlp32", "vlp16"):
        best, med, cloud = timed(lambda: lidar_scan(0, sensor=sensor), repeats)
        print(f"{f'lidar_scan(seed=0, {sensor})':44s} {best:8.3f} {med:9.3f} {len(cloud):9d}")
    import tempfile

    from pcseg.synth.writer import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        best, med, _ = timed(lambda: write_dataset(tmp, ("00",), 10, seed=0, progress=False), max(2, repeats // 2))
    print(f"{'write_dataset 10 hdl64 scans, per scan':44s} {best / 10:8.3f} {med / 10:9.3f} {'':>9s}")
    best, med, frame = timed(lambda: depth_frame(0), max(2, repeats // 2))
    print(f"{'depth_frame(seed=0) 640x480 incl. room':44s} {best:8.3f} {med:9.3f} {int((frame.depth > 0).sum()):9d}")


def _stats(xyz, names):
    r = np.linalg.norm(xyz, axis=1)
    hist = np.histogram(r, RANGE_BINS)[0] / len(r)
    unique, counts = np.unique(names, return_counts=True)
    return len(r), hist, dict(zip(unique.tolist(), (counts / len(r)).tolist()))


def _cars_by_range(xyz, semantic, instance, car_ids):
    """(distance of the car's centre, its point count) for every car instance."""
    rows = []
    for inst in np.unique(instance[np.isin(semantic, car_ids)]):
        pick = np.isin(semantic, car_ids) & (instance == inst)
        rows.append((float(np.linalg.norm(xyz[pick, :2].mean(0))), int(pick.sum())))
    return rows


def realism(n_synth: int = 12) -> None:
    from pcseg.io import LabelMap
    from pcseg.synth.lidar import lidar_scan

    if not SHARED.is_dir():
        print("realism: ../shared/data not present, skipped")
        return
    label_map = LabelMap.builtin("semantickitti")
    name_of_train = np.array(label_map.class_names)

    def raw_names(raw):
        return name_of_train[label_map.to_train(raw)]

    real = []  # (label, n, hist, fractions)
    kitti = SHARED / "semantickitti" / "sequences" / "08"
    pts = np.fromfile(kitti / "velodyne" / "000000.bin", dtype=np.float32).reshape(-1, 4)
    lab = np.fromfile(kitti / "labels" / "000000.label", dtype=np.uint32)
    real.append(("kitti 08/000000", *_stats(pts[:, :3], raw_names((lab & 0xFFFF).astype(np.int64)))))
    real_cars = _cars_by_range(pts[:, :3], (lab & 0xFFFF).astype(np.int64), (lab >> 16).astype(np.int64), [10, 252])
    for path in sorted((SHARED / "semantickitti-npy").glob("*points*.npy")):
        xyz = np.load(path)[:, :3]
        train = np.load(str(path).replace("points", "labels")).reshape(-1).astype(np.int64)
        if np.median(np.linalg.norm(xyz, axis=1)) > 60:
            print(f"realism: {path.name} is not centred on its sensor (median range > 60 m), left out")
            continue
        real.append((path.stem.replace("_points", ""), *_stats(xyz, name_of_train[train])))

    real_intensity = (raw_names((lab & 0xFFFF).astype(np.int64)), pts[:, 3])
    synth = []
    synth_cars = []
    synth_intensity = ([], [])
    for seed in range(n_synth):
        cloud = lidar_scan(seed)
        synth.append((f"synth seed {seed}", *_stats(cloud.xyz, raw_names(cloud.labels))))
        synth_cars += _cars_by_range(cloud.xyz, cloud.labels, cloud.instance, [10])
        synth_intensity[0].append(raw_names(cloud.labels))
        synth_intensity[1].append(cloud.intensity)
    synth_intensity = (np.concatenate(synth_intensity[0]), np.concatenate(synth_intensity[1]))

    print("\npoints per scan and range histogram (fraction of points per range bin, metres)")
    print(f"{'scan':24s} {'points':>8s} " + " ".join(f"{f'{a}-{b}':>6s}" for a, b in zip(RANGE_BINS[:-1], RANGE_BINS[1:])))
    for group in (real, synth):
        for name, n, hist, _ in group:
            print(f"{name:24s} {n:8d} " + " ".join(f"{h:6.3f}" for h in hist))
        mean_hist = np.mean([g[2] for g in group], axis=0)
        print(f"{'  mean':24s} {np.mean([g[1] for g in group]):8.0f} " + " ".join(f"{h:6.3f}" for h in mean_hist))

    print("\nclass fractions (mean over scans; real npy frames carry train ids, so moving classes merge)")
    classes = [c for c in label_map.class_names if c != label_map.class_names[0]]
    print(f"{'class':16s} {'real':>7s} {'synth':>7s}")
    for c in ["unlabeled", *classes]:
        r = np.mean([g[3].get(c, 0.0) for g in real])
        s = np.mean([g[3].get(c, 0.0) for g in synth])
        print(f"{c:16s} {r:7.3f} {s:7.3f}")

    print("\nmedian intensity by class (real: kitti 08/000000, the only real scan with intensity)")
    print(f"{'class':16s} {'real':>7s} {'synth':>7s}")
    for c in ("road", "sidewalk", "terrain", "vegetation", "building", "car", "pole", "traffic-sign"):
        values = [inten[names == c] for names, inten in (real_intensity, synth_intensity)]
        print(f"{c:16s} " + " ".join(f"{np.median(v):7.2f}" if len(v) else f"{'-':>7s}" for v in values))

    print("\npoints per car by distance (car centre, horizontal)")
    print(f"{'range m':10s} {'real (kitti 08/000000)':>26s} {'synth median [n cars]':>24s}")
    for centre in (10, 20, 40):
        lo, hi = centre * 0.8, centre * 1.2
        r = [n for d, n in real_cars if lo <= d < hi]
        s = [n for d, n in synth_cars if lo <= d < hi]
        rs = ", ".join(map(str, r)) if r else "-"
        ss = f"{int(np.median(s))} [{len(s)}]" if s else "-"
        print(f"{f'{lo:.0f}-{hi:.0f}':10s} {rs:>26s} {ss:>24s}")


def realism_rgbd(n_frames: int = 8) -> None:
    """Valid-depth fraction and depth percentiles: synthetic frames next to the real TUM frame."""
    from PIL import Image

    from pcseg.synth.indoor import depth_frame

    tum = SHARED / "rgbd" / "TUM_depth.png"
    print("\nRGB-D: valid-depth fraction and depth percentiles (m)")
    print(f"{'frame':24s} {'valid':>6s} {'p5':>6s} {'p50':>6s} {'p95':>6s}")
    rows = []
    if tum.exists():
        rows.append(("TUM (real, 5000/m)", np.array(Image.open(tum)).astype(np.float64) / 5000.0))
    for seed in range(n_frames):
        rows.append((f"synth seed {seed}", depth_frame(seed).depth / 1000.0))
    for name, z in rows:
        valid = z > 0
        p5, p50, p95 = np.percentile(z[valid], [5, 50, 95])
        print(f"{name:24s} {valid.mean():6.3f} {p5:6.2f} {p50:6.2f} {p95:6.2f}")


def learnability(train_seeds=range(100, 106), test_seeds=range(200, 202), epochs: int = 6) -> None:
    """Sanity check that classes differ in geometry/intensity: a per-point MLP on local features.

    Features per point (no context beyond 16 neighbours): height, range, intensity, the local
    covariance's linearity / planarity / scattering, |normal z|, neighbourhood height span and
    size. Trained on 6 scans, scored on 2 scans of unseen streets. A segmentation network that
    sees context should do much better; this only shows the classes are not arbitrary.
    """
    import torch
    from scipy.spatial import cKDTree

    from pcseg.io import LabelMap
    from pcseg.synth.lidar import lidar_scan

    label_map = LabelMap.builtin("semantickitti")

    def features(cloud):
        xyz = cloud.xyz.astype(np.float64)
        _, idx = cKDTree(xyz).query(xyz, k=16)
        nb = xyz[idx]
        centred = nb - nb.mean(1, keepdims=True)
        evals, evecs = np.linalg.eigh(np.einsum("nki,nkj->nij", centred, centred) / 16)
        evals = np.maximum(evals, 1e-9)
        l3, l2, l1 = evals[:, 0], evals[:, 1], evals[:, 2]
        span = nb[:, :, 2].max(1) - nb[:, :, 2].min(1)
        return np.stack([xyz[:, 2], np.linalg.norm(xyz[:, :2], axis=1) / 50, cloud.intensity, (l1 - l2) / l1,
                         (l2 - l3) / l1, l3 / l1, np.abs(evecs[:, 2, 0]), span, np.sqrt(l1)], 1).astype(np.float32)

    def load(seeds):
        clouds = [lidar_scan(seed) for seed in seeds]
        return np.concatenate([features(c) for c in clouds]), np.concatenate([label_map.to_train(c.labels) for c in clouds])

    x_train, y_train = load(train_seeds)
    x_test, y_test = load(test_seeds)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(x_train.shape[1], 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                              torch.nn.ReLU(), torch.nn.Linear(128, label_map.num_classes))
    optimiser = torch.optim.Adam(net.parameters(), 3e-3)
    counts = np.bincount(y_train, minlength=label_map.num_classes).astype(np.float32)
    weight = torch.tensor(1.0 / np.sqrt(np.maximum(counts, 1.0)))
    weight[label_map.ignore_index] = 0.0
    xt, yt = torch.tensor((x_train - mean) / std), torch.tensor(y_train)
    for _ in range(epochs):
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), 8192):
            batch = order[start:start + 8192]
            loss = torch.nn.functional.cross_entropy(net(xt[batch]), yt[batch], weight=weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        pred = net(torch.tensor((x_test - mean) / std)).argmax(1).numpy()
    print(f"\nlearnability: per-point MLP on local features, {len(x_train)} train / {len(x_test)} test points")
    print(f"{'class':16s} {'points':>7s} {'IoU':>5s}")
    for k in range(1, label_map.num_classes):
        n = int((y_test == k).sum())
        if n:
            iou = ((pred == k) & (y_test == k)).sum() / ((pred == k) | (y_test == k)).sum()
            print(f"{label_map.class_names[k]:16s} {n:7d} {iou:5.2f}")
    print(f"{'overall accuracy':16s} {'':7s} {(pred == y_test).mean():5.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--realism", action="store_true")
    parser.add_argument("--learnability", action="store_true", help="also train a tiny per-point classifier (~1 min)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    both = not (args.speed or args.realism or args.learnability)
    if args.speed or both:
        speed(args.repeats)
    if args.realism or both:
        realism()
        realism_rgbd()
    if args.learnability:
        learnability()


if __name__ == "__main__":
    main()
