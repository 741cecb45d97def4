"""The bundled airborne model next to the cloth-simulation filter (CSF) on real and synthetic tiles.

Run: python benchmarks/bench_airborne.py [--checkpoint CKPT] [--synthetic 4]  -> prints a table.
Leave-one-out: python benchmarks/bench_airborne.py --loo [--runs runs] scores each real tile with
the checkpoint that never saw it, ``runs/airborne_loo_<tile stem>/last.pt`` (trained with
``configs/airborne_loo_<tile stem>.yaml``: synthetic tiles plus the other real tile).

Tiles: the real LAS tiles in ../shared/data/las (never seen in training) and synthetic tiles with
seeds the training never drew. The model runs through ``segment_las`` (the ``pcseg segment
--format las`` path: tiles, context margin, feet converted to metres). Scores per tile: IoU of
ground (ASPRS 2 and 11), vegetation (3-5) and building (6) on the points whose reference class is
one of those; mIoU = their mean. CSF (pip ``cloth-simulation-filter``) only separates ground from
the rest: its ground IoU is reported at each cloth resolution tried and at its best (an oracle
choice, in CSF's favour). Needs ``pip install cloth-simulation-filter`` for the CSF rows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's pcseg, not an installed one
DATA = REPO.parent / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")

GROUPS = {"ground": (2, 11), "vegetation": (3, 4, 5), "building": (6,)}
RESOLUTIONS = (0.5, 1.0, 2.0)


def group_ids(codes: np.ndarray) -> np.ndarray:
    """int64 (N,): 0 ground, 1 vegetation, 2 building, -1 anything else."""
    out = np.full(len(codes), -1, np.int64)
    for k, members in enumerate(GROUPS.values()):
        out[np.isin(codes, members)] = k
    return out


def ious(reference: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """float (3,) IoU per group over the points whose reference is a group (-1 predictions are wrong)."""
    scored = reference >= 0
    ref, pred = reference[scored], predicted[scored]
    out = []
    for k in range(len(GROUPS)):
        inter = np.sum((ref == k) & (pred == k))
        union = np.sum((ref == k) | (pred == k))
        out.append(inter / union if union else np.nan)
    return np.array(out)


def csf_ground(xyz_m: np.ndarray, resolution: float) -> np.ndarray:
    """bool (N,) ground mask from CSF on metric coordinates."""
    import CSF

    csf = CSF.CSF()
    csf.params.bSloopSmooth = False
    csf.params.cloth_resolution = resolution
    csf.params.class_threshold = 0.5
    csf.setPointCloud(np.ascontiguousarray(xyz_m - xyz_m.min(axis=0), dtype=np.float64))
    ground, non_ground = CSF.VecInt(), CSF.VecInt()
    csf.do_filtering(ground, non_ground, False)
    mask = np.zeros(len(xyz_m), bool)
    mask[np.asarray(ground, dtype=np.int64)] = True
    return mask


def synthetic_las(path: Path, seed: int) -> Path:
    """A synthetic airborne tile written as LAS 1.4 / format 6 with its ASPRS classes."""
    import laspy

    from pcseg.synth.airborne import airborne_tile

    cloud = airborne_tile(seed)
    header = laspy.LasHeader(version="1.4", point_format=6)
    world = cloud.world_xyz()
    header.offsets = np.floor(world.min(axis=0))
    header.scales = np.array([0.001, 0.001, 0.001])
    las = laspy.LasData(header)
    las.x, las.y, las.z = world[:, 0], world[:, 1], world[:, 2]
    las.intensity = cloud.intensity.astype(np.uint16)
    las.classification = cloud.labels.astype(np.uint8)
    las.write(str(path))
    return path


def score_tile(seg, name, path, tmp, have_csf) -> tuple:
    """Segment ``path`` with ``seg`` through ``segment_las``, print its rows; (name, model IoUs, CSF best)."""
    import laspy

    from pcseg.engine.las_stream import segment_las
    from pcseg.io.las import las_metres_per_unit

    las = laspy.read(str(path))
    reference = group_ids(np.asarray(las.classification))
    start = time.perf_counter()
    segment_las(seg, path, tmp / "out.las", progress=False)
    speed = len(reference) / (time.perf_counter() - start)
    predicted = group_ids(np.asarray(laspy.read(str(tmp / "out.las")).classification))
    model = ious(reference, predicted)
    csf_best, csf_res, csf_all = np.nan, None, {}
    if have_csf:
        metres = las_metres_per_unit(las.header)
        xyz = np.column_stack([las.x, las.y, las.z]) * metres
        for res in RESOLUTIONS:
            csf_all[res] = ious(reference, np.where(csf_ground(xyz, res), 0, -1))[0]
        csf_res = max(csf_all, key=lambda r: csf_all[r])
        csf_best = csf_all[csf_res]
    csf_text = f"{100 * csf_best:5.1f} ({csf_res} m)" if have_csf else "-"
    print(f"{name:<24}{len(reference):>8}  {' / '.join(f'{100 * v:4.1f}' for v in model):>16} "
          f"{100 * np.nanmean(model):6.1f} {speed:8.0f}  {csf_text:>22}")
    if have_csf:
        print(f"{'':<24}  CSF ground IoU by cloth resolution: "
              + ", ".join(f"{r} m {100 * v:.1f}" for r, v in csf_all.items()))
    return name, model, csf_best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the bundled airborne model")
    parser.add_argument("--synthetic", type=int, default=4, help="synthetic tiles (seeds 900000+)")
    parser.add_argument("--loo", action="store_true",
                        help="leave-one-out: each real tile scored by the run that never saw it")
    parser.add_argument("--runs", default=str(REPO / "runs"), help="--loo: folder of the airborne_loo_* runs")
    parser.add_argument("--no-csf", action="store_true")
    args = parser.parse_args(argv)
    from pcseg.engine.segmenter import Segmenter

    try:
        import CSF  # noqa: F401
        have_csf = not args.no_csf
    except ImportError:
        have_csf = False
        print("cloth-simulation-filter not installed: no CSF rows (pip install cloth-simulation-filter)")
    tmp = Path(tempfile.mkdtemp())
    real = [(p.name, p) for p in sorted((DATA / "las").glob("*.la[sz]"))]
    if args.loo:
        jobs = []
        for name, path in real:
            ckpt = Path(args.runs) / f"airborne_loo_{path.stem}" / "last.pt"
            if not ckpt.is_file():
                print(f"{name}: no leave-one-out run {ckpt} (pcseg train configs/airborne_loo_{path.stem}.yaml)")
                continue
            jobs.append((name, path, ckpt))
        print("leave-one-out: each real tile scored by the run trained without it (synthetic + the other tile)")
    else:
        if args.checkpoint is None:
            from pcseg.pretrained import checkpoint_path

            args.checkpoint = checkpoint_path("airborne")
        tiles = real + [(f"synthetic seed {900000 + i}", synthetic_las(tmp / f"syn{i}.las", 900000 + i))
                        for i in range(args.synthetic)]
        jobs = [(name, path, args.checkpoint) for name, path in tiles]
        print(f"airborne model {Path(args.checkpoint).name}")
    print("IoU % on points whose reference is ground (2, 11), vegetation (3-5) or building (6); CSF: ground only")
    print(f"{'tile':<24}{'points':>8}  {'model g/v/b':>16} {'mIoU':>6} {'pts/s':>8}  {'CSF ground (best res)':>22}")
    rows, models = [], {}
    for name, path, ckpt in jobs:
        if ckpt not in models:
            models[ckpt] = Segmenter.from_checkpoint(ckpt)
        rows.append(score_tile(models[ckpt], name, path, tmp, have_csf))
    real_rows = [r for r in rows if not r[0].startswith("synthetic")]
    if real_rows:
        m = np.nanmean([np.nanmean(r[1]) for r in real_rows])
        g = np.nanmean([r[1][0] for r in real_rows])
        c = np.nanmean([r[2] for r in real_rows]) if have_csf else np.nan
        print(f"real tiles: model mIoU {100 * m:.1f}, model ground IoU {100 * g:.1f}, CSF best ground IoU {100 * c:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
