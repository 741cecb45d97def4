"""PanopticQuality against hand-computed cases and the official SemanticKITTI evaluator.

The official ``PanopticEval`` (semantic-kitti-api 0.1, ``auxiliary/eval_np.py``) is read from the
package's sdist at test time (``pip download``); those comparisons skip when it cannot be fetched.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from pcseg.errors import PcsegValueError
from pcseg.metrics import PanopticQuality

REPO = Path(__file__).resolve().parents[1]
THINGS = list(range(1, 9))  # SemanticKITTI train ids car..motorcyclist


@pytest.fixture(scope="session")
def official(tmp_path_factory):
    """The official ``PanopticEval`` class, or a skip when the sdist cannot be obtained."""
    folder = tmp_path_factory.mktemp("ska")
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "semantic-kitti-api==0.1", "-d", str(folder)], check=True, capture_output=True, timeout=180)
        sdist = next(folder.glob("semantic*kitti*api-0.1.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("auxiliary/eval_np.py"))
            source = tar.extractfile(member).read()
    except (subprocess.SubprocessError, OSError, StopIteration, tarfile.TarError) as exc:
        pytest.skip(f"semantic-kitti-api 0.1 sdist not obtainable: {type(exc).__name__}")
    path = folder / "eval_np.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("ska_eval_np", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PanopticEval


def run_official(PanopticEval, C, ignore, min_points, scans):
    with contextlib.redirect_stdout(io.StringIO()):
        ev = PanopticEval(C, None, ignore, min_points=min_points)
    for ps, pi, gs, gi in scans:
        ev.addBatch(ps, pi, gs, gi)
    return ev


def assert_equal_to_official(pq: PanopticQuality, ev, things=None):
    P, S, R, pq_all, sq_all, rq_all = ev.getPQ()
    miou, iou_all = ev.getSemIoU()
    s = pq.summary()
    inc = pq.include
    for mine, theirs in ((s["pq"], P), (s["sq"], S), (s["rq"], R), (s["miou"], miou)):
        assert abs(mine - float(theirs)) <= 1e-9
    for key, theirs in (("pq_class", pq_all), ("sq_class", sq_all), ("rq_class", rq_all), ("iou_class", iou_all)):
        np.testing.assert_allclose(s[key][inc], theirs[inc], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(s["tp"], ev.pan_tp)
    np.testing.assert_array_equal(s["fp"], ev.pan_fp)
    np.testing.assert_array_equal(s["fn"], ev.pan_fn)
    if things is not None:  # evaluate_panoptic.py's aggregates, from the official per-class values
        stuff = [c for c in inc if c not in things]
        assert abs(s["pq_things"] - pq_all[things].mean()) <= 1e-9
        assert abs(s["pq_stuff"] - pq_all[stuff].mean()) <= 1e-9
        assert abs(s["rq_things"] - rq_all[things].mean()) <= 1e-9
        assert abs(s["sq_stuff"] - sq_all[stuff].mean()) <= 1e-9
        assert abs(s["pq_dagger"] - np.concatenate([pq_all[things], iou_all[stuff]]).mean()) <= 1e-9


def hand_case():
    """0 ignored, 1 car (thing), 2 road (stuff); see test_hand_computed for the counts."""
    ps, pi, gs, gi = [], [], [], []

    def add(n, p, g):
        ps.extend([p[0]] * n), pi.extend([p[1]] * n), gs.extend([g[0]] * n), gi.extend([g[1]] * n)

    add(10, (1, 7), (0, 0))   # ignored ground truth: removed from both sides
    add(8, (1, 5), (1, 1))    # car A (10 points): 8 found as instance 5
    add(2, (2, 0), (1, 1))    # ... 2 called road
    add(4, (1, 6), (1, 2))    # car B (4 points) inside predicted instance 6 ...
    add(4, (1, 6), (2, 0))    # ... which also takes 4 road points: IoU 4/8 = 0.5, not a match
    add(16, (2, 0), (2, 0))   # road (20 points): 16 right
    return [np.array(a, dtype=np.int64) for a in (ps, pi, gs, gi)]


def test_hand_computed():
    pq = PanopticQuality(3, ignore_index=0, min_points=1, things=[1]).update(*hand_case())
    s = pq.summary()
    # car: A matched with IoU 8/10; B unmatched (FN), predicted 6 unmatched (FP)
    assert list(s["tp"]) == [0, 1, 1] and list(s["fp"]) == [0, 1, 0] and list(s["fn"]) == [0, 1, 0]
    assert s["sq_class"][1] == pytest.approx(0.8) and s["rq_class"][1] == pytest.approx(0.5)
    assert s["pq_class"][1] == pytest.approx(0.4)
    # road: predicted road = 16 + 2 points, IoU 16 / 22
    assert s["pq_class"][2] == pytest.approx(16 / 22) and s["rq_class"][2] == 1.0
    assert s["pq"] == pytest.approx((0.4 + 16 / 22) / 2)
    assert s["sq"] == pytest.approx((0.8 + 16 / 22) / 2) and s["rq"] == pytest.approx(0.75)
    # semantic: car 12 right of 14 true and 16 predicted -> 12/18
    assert s["iou_class"][1] == pytest.approx(12 / 18) and s["miou"] == pytest.approx((12 / 18 + 16 / 22) / 2)
    assert s["pq_things"] == pytest.approx(0.4) and s["pq_stuff"] == pytest.approx(16 / 22)
    assert s["pq_dagger"] == pytest.approx((0.4 + 16 / 22) / 2)
    assert np.isnan(s["pq_class"][0])
    # with min_points 5 car B (4 points) is no longer a false negative; predicted 6 (8) still a FP
    s5 = PanopticQuality(3, 0, min_points=5).update(*hand_case()).summary()
    assert list(s5["fn"]) == [0, 0, 0] and list(s5["fp"]) == [0, 1, 0]
    assert s5["pq_class"][1] == pytest.approx(0.8 * 1 / 1.5)
    assert "pq_things" not in s5  # no thing list given


def test_perfect_and_relabelled_instances():
    rng = np.random.default_rng(1)
    gs = rng.integers(0, 4, 500)
    gi = np.where(gs == 1, rng.integers(1, 4, 500), 0)
    # the same segmentation with other instance numbers is perfect
    pi = np.where(gi > 0, gi * 17 + 3, 0)
    s = PanopticQuality(4, 0, min_points=1).update(gs, pi, gs, gi).summary()
    present = [c for c in (1, 2, 3) if (gs == c).any()]
    assert all(s["pq_class"][c] == 1.0 for c in present)
    # an ignored predicted class forms no segment: no false positive, only the missed car
    ps = gs.copy()
    car = (gs == 1) & (gi == 1)
    ps[car] = 0
    s = PanopticQuality(4, 0, min_points=1).update(ps, gi, gs, gi).summary()
    assert s["fp"][1] == 0 and s["fn"][1] == 1 and s["tp"][1] == 2


def test_torch_input_and_merge():
    torch = pytest.importorskip("torch")
    case = hand_case()
    a = PanopticQuality(3, 0, 1).update(*[torch.from_numpy(x) for x in case])
    b = PanopticQuality(3, 0, 1).update(*case)
    assert a.summary()["pq"] == b.summary()["pq"]
    both = PanopticQuality(3, 0, 1).update(*case).merge(b)
    assert list(both.tp) == [0, 2, 2] and both.summary()["pq"] == pytest.approx(b.summary()["pq"])


def test_bad_input():
    pq = PanopticQuality(3, 0)
    with pytest.raises(PcsegValueError, match="pred_instance has 2 points"):
        pq.update(np.zeros(3, int), np.zeros(2, int), np.zeros(3, int), np.zeros(3, int))
    with pytest.raises(PcsegValueError, match="integer"):
        pq.update(np.zeros(3), np.zeros(3, int), np.zeros(3, int), np.zeros(3, int))
    with pytest.raises(PcsegValueError, match="gt_instance"):
        pq.update(np.zeros(3, int), np.zeros(3, int), np.zeros(3, int), -np.ones(3, int))
    with pytest.raises(PcsegValueError):
        pq.update(np.full(3, 5), np.zeros(3, int), np.zeros(3, int), np.zeros(3, int))
    with pytest.raises(PcsegValueError, match="things"):
        PanopticQuality(3, 0, things=[0])
    with pytest.raises(PcsegValueError, match="min_points"):
        PanopticQuality(3, 0, min_points=-1)


@pytest.mark.parametrize("seed", range(6))
def test_random_equal_to_official(official, seed):
    rng = np.random.default_rng(seed)
    C = int(rng.integers(3, 9))
    ignore = [0] if seed % 3 else [0, C - 1]
    min_points = int(rng.integers(1, 40))
    scans = []
    for _ in range(3):
        n = int(rng.integers(200, 4000))
        gs = rng.integers(0, C, n)
        gi = rng.integers(0, int(rng.integers(1, 8)), n)
        ps = np.where(rng.random(n) < 0.75, gs, rng.integers(0, C, n))
        pi = np.where(rng.random(n) < 0.85, gi * 3 + 1, rng.integers(0, 9, n))
        scans.append((ps, pi, gs, gi))
    pq = PanopticQuality(C, ignore, min_points, things=[1, 2])
    for scan in scans:
        pq.update(*scan)
    ev = run_official(official, C, ignore, min_points, scans)
    assert ev.pan_tp.sum() > 0  # the case exercises matches
    assert_equal_to_official(pq, ev, things=[1, 2])


def test_large_sparse_instance_ids_equal_to_official(official):
    """Instance ids spread over 0..2**31 with thousands of distinct values: the paths that sort
    instead of counting in tables give the official numbers too."""
    rng = np.random.default_rng(11)
    n = 6000
    gs = rng.integers(0, 6, n)
    base = rng.integers(0, 2**31, 40)
    gi = np.where(rng.random(n) < 0.5, base[rng.integers(0, 40, n)], rng.integers(0, 2**31, n))
    ps = np.where(rng.random(n) < 0.8, gs, rng.integers(0, 6, n))
    pi = np.where(rng.random(n) < 0.8, gi, rng.integers(0, 2**31, n))
    pq = PanopticQuality(6, 0, 3).update(ps, pi, gs, gi)
    ev = run_official(official, 6, [0], 3, [(ps, pi, gs, gi)])
    assert ev.pan_tp.sum() > 10
    assert_equal_to_official(pq, ev)


def learning_lut():
    spec = yaml.safe_load((REPO / "pcseg" / "data" / "label_maps" / "semantickitti.yaml").read_text())
    lut = np.zeros(max(spec["learning_map"]) + 1, dtype=np.int64)
    for raw, train in spec["learning_map"].items():
        lut[raw] = train
    return lut


def perturbed(raw, inst, rng):
    """A plausible panoptic prediction made from the ground truth: instances split, merged and
    renumbered, 8 % of the points relabelled."""
    raw, inst = raw.copy(), inst.copy()
    ids, counts = np.unique(inst[inst > 0], return_counts=True)
    order = ids[np.argsort(-counts)]
    if len(order) >= 3:
        biggest = np.flatnonzero(inst == order[0])
        inst[biggest[: len(biggest) // 3]] = 999  # split
        inst[inst == order[2]] = order[1]  # merge
    inst[inst > 0] = inst[inst > 0] * 7 % 4001
    flip = rng.random(len(raw)) < 0.08
    raw[flip] = rng.choice(np.array([10, 11, 30, 40, 48, 50, 70, 72]), flip.sum())
    return raw, inst


def test_real_scan_equal_to_official(official, kitti_scan):
    _, label_path = kitti_scan
    packed = np.fromfile(label_path, dtype="<u4")
    raw, inst = (packed & 0xFFFF).astype(np.int64), (packed >> 16).astype(np.int64)
    assert len(np.unique(inst)) > 3  # the scan has instances
    lut = learning_lut()
    rng = np.random.default_rng(0)
    p_raw, p_inst = perturbed(raw, inst, rng)
    scan = (lut[p_raw], p_inst, lut[raw], inst)
    pq = PanopticQuality(20, 0, 50, things=THINGS).update(*scan)
    ev = run_official(official, 20, [0], 50, [scan])
    assert ev.pan_tp.sum() > 5
    assert_equal_to_official(pq, ev, things=THINGS)
    # the ground truth scored against itself: every present class is perfect
    s = PanopticQuality(20, 0, 50).update(lut[raw], inst, lut[raw], inst).summary()
    present = [c for c in range(1, 20) if (lut[raw] == c).any()]
    assert all(s["pq_class"][c] == 1.0 for c in present)


def test_score_cli_panoptic(official, kitti_scan, tmp_path, capsys):
    from pcseg.cli import main

    _, label_path = kitti_scan
    packed = np.fromfile(label_path, dtype="<u4")
    raw, inst = (packed & 0xFFFF).astype(np.int64), (packed >> 16).astype(np.int64)
    rng = np.random.default_rng(3)
    lut = learning_lut()
    scans = []
    for scan in range(2):
        p_raw, p_inst = perturbed(raw, inst, rng)
        for side, (r, i) in (("gt/sequences/08/labels", (raw, inst)), ("pred/sequences/08/predictions", (p_raw, p_inst))):
            path = tmp_path / side / f"{scan:06d}.label"
            path.parent.mkdir(parents=True, exist_ok=True)
            (r.astype(np.uint32) | (i.astype(np.uint32) << 16)).tofile(path)
        scans.append((lut[p_raw], p_inst, lut[raw], inst))
    out = tmp_path / "report"
    assert main(["score", "--panoptic", str(tmp_path / "pred"), str(tmp_path / "gt"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PQ-dagger" in printed and "car" in printed
    data = json.loads((out / "metrics.json").read_text())
    P, S, R, pq_all, _, _ = run_official(official, 20, [0], 50, scans).getPQ()
    assert abs(data["pq"] - P) <= 1e-9 and abs(data["sq"] - S) <= 1e-9 and abs(data["rq"] - R) <= 1e-9
    assert abs(data["per_class"]["car"]["pq"] - pq_all[1]) <= 1e-9
    assert data["scans"] == 2 and data["things"][0] == "car"


def test_score_cli_panoptic_bad_input(tmp_path, capsys):
    from pcseg.cli import main

    np.zeros(5, dtype=np.int64).astype(np.uint32).tofile(tmp_path / "a.label")
    np.save(tmp_path / "b.npy", np.zeros(5, dtype=np.int64))
    assert main(["score", "--panoptic", str(tmp_path / "b.npy"), str(tmp_path / "a.label")]) == 2
    assert "needs .label files" in capsys.readouterr().err
    assert main(["score", "--panoptic", str(tmp_path / "a.label"), str(tmp_path / "a.label"),
                 "--out", str(tmp_path / "r")]) == 2
    assert "nothing to score" in capsys.readouterr().err
