"""ConfusionMatrix against hand-computed cases, a naive loop, and the official SemanticKITTI formula."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pcseg.errors import PcsegValueError
from pcseg.metrics import ConfusionMatrix, merge_all


def naive_scores(pred, target, num_classes, ignore):
    """Independent reference: a Python loop over points, then textbook definitions."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(pred.tolist(), target.tolist()):
        if t in ignore:
            continue
        m[t, p] += 1
    keep = [c for c in range(num_classes) if c not in ignore]
    iou, acc, prec = {}, {}, {}
    for c in keep:
        tp = m[c, c]
        fn = m[c].sum() - tp
        fp = m[:, c].sum() - tp
        iou[c] = tp / (tp + fp + fn) if tp + fp + fn else None
        acc[c] = tp / m[c].sum() if m[c].sum() else None
        prec[c] = tp / m[:, c].sum() if m[:, c].sum() else None
    present = [v for v in iou.values() if v is not None]
    total = m.sum()
    return {
        "matrix": m,
        "iou": iou,
        "acc": acc,
        "prec": prec,
        "miou": sum(present) / len(present),
        "miou_zero": sum(v or 0.0 for v in iou.values()) / len(keep),
        "oa": np.trace(m) / total,
        "macc": np.mean([v for v in acc.values() if v is not None]),
        "fwiou": sum(m[c].sum() / total * (iou[c] or 0.0) for c in keep),
    }


def official_semantickitti_miou(pred, target, num_classes, ignore):
    """The semantic-kitti-api evaluator's formula, re-implemented from its description:
    matrix indexed [pred, target], ignored target columns zeroed, IoU = tp / (tp+fp+fn+1e-15),
    mean over every non-ignored class (absent classes therefore count as 0)."""
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(conf, (pred, target), 1)
    conf[:, ignore] = 0
    tp = np.diag(conf)
    fp = conf.sum(axis=1) - tp
    fn = conf.sum(axis=0) - tp
    include = [c for c in range(num_classes) if c not in ignore]
    return (tp[include] / (tp + fp + fn + 1e-15)[include]).mean()


def test_two_squares_by_hand():
    # a 2x2 ground-truth square and a 2x2 predicted square overlapping in one cell of a 7x7 grid
    target = np.zeros((7, 7), dtype=np.int64)
    pred = np.zeros((7, 7), dtype=np.int64)
    target[2:4, 2:4] = 1
    pred[3:5, 3:5] = 1
    cm = ConfusionMatrix(2).update(pred, target)
    np.testing.assert_array_equal(cm.matrix, [[42, 3], [3, 1]])
    np.testing.assert_allclose(cm.iou(), [42 / 48, 1 / 7])
    assert cm.miou() == pytest.approx((42 / 48 + 1 / 7) / 2)
    assert cm.accuracy() == pytest.approx(43 / 49)
    np.testing.assert_allclose(cm.recall(), [42 / 45, 1 / 4])
    np.testing.assert_allclose(cm.precision(), [42 / 45, 1 / 4])
    assert cm.fwiou() == pytest.approx(45 / 49 * 42 / 48 + 4 / 49 * 1 / 7)


def test_ignore_semantics_by_hand():
    # classes: 0 unlabeled (ignored), 1, 2, 3 (3 never appears anywhere)
    target = np.array([0, 0, 1, 1, 1, 2, 2])
    pred = np.array([1, 2, 1, 0, 2, 2, 2])
    cm = ConfusionMatrix(4, ignore_index=0).update(pred, target)
    # ignored targets vanish; predicting 0 on a labeled point stays as an error in column 0
    np.testing.assert_array_equal(cm.matrix, [[0, 0, 0, 0], [1, 1, 1, 0], [0, 0, 2, 0], [0, 0, 0, 0]])
    iou = cm.iou()
    assert np.isnan(iou[0]) and np.isnan(iou[3])  # ignored / absent
    assert iou[1] == pytest.approx(1 / 3)
    assert iou[2] == pytest.approx(2 / 3)
    assert cm.miou() == pytest.approx(0.5)  # absent class 3 excluded
    assert cm.miou(absent="zero") == pytest.approx(1 / 3)  # absent class 3 as 0
    assert cm.miou(absent="target") == pytest.approx(0.5)  # classes 1 and 2 are in the target
    assert cm.accuracy() == pytest.approx(3 / 5)
    assert cm.mean_accuracy() == pytest.approx((1 / 3 + 1) / 2)


def test_class_only_predicted_counts_as_zero_in_both_conventions():
    cm = ConfusionMatrix(3).update(np.array([0, 2]), np.array([0, 1]))
    assert cm.iou()[2] == 0.0 and cm.iou()[1] == 0.0
    assert cm.miou() == pytest.approx(1 / 3)
    assert cm.miou(absent="zero") == pytest.approx(1 / 3)
    # class 2 was only predicted: no term of its own over the classes of the ground truth (0, 1)
    assert cm.miou(absent="target") == pytest.approx(1 / 2)


@pytest.mark.parametrize("ignore", [None, 0, [0, 5]])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_against_naive(seed, ignore):
    rng = np.random.default_rng(seed)
    C = 7
    n = 3000
    target = rng.integers(0, C - 1, n)  # class C-1 never in the target
    pred = np.where(rng.random(n) < 0.6, target, rng.integers(0, C, n))
    pred[pred == 4] = 3  # class 4 never predicted
    ig = [] if ignore is None else ([ignore] if np.isscalar(ignore) else ignore)
    ref = naive_scores(pred, target, C, ig)
    cm = ConfusionMatrix(C, ignore_index=ignore)
    half = n // 2
    cm.update(pred[:half], target[:half]).update(torch.from_numpy(pred[half:]), torch.from_numpy(target[half:]))
    np.testing.assert_array_equal(cm.matrix, ref["matrix"])
    assert cm.matrix.dtype == np.int64
    for c in range(C):
        for got, want in ((cm.iou()[c], ref["iou"].get(c)), (cm.recall()[c], ref["acc"].get(c)),
                          (cm.precision()[c], ref["prec"].get(c))):
            if want is None:
                assert np.isnan(got)
            else:
                assert got == pytest.approx(want)
    assert cm.miou() == pytest.approx(ref["miou"])
    assert cm.miou(absent="zero") == pytest.approx(ref["miou_zero"])
    assert cm.accuracy() == pytest.approx(ref["oa"])
    assert cm.mean_accuracy() == pytest.approx(ref["macc"])
    assert cm.fwiou() == pytest.approx(ref["fwiou"])


@pytest.mark.parametrize("seed", range(5))
def test_absent_zero_matches_official_semantickitti_formula(seed):
    rng = np.random.default_rng(seed)
    C = 20
    n = 5000
    present = rng.choice(np.arange(1, C), size=8, replace=False)  # most classes absent
    target = rng.choice(np.concatenate([[0], present]), n)
    wrong = rng.choice(np.concatenate([[0], present]), n)  # absent classes are never predicted either
    pred = np.where(rng.random(n) < 0.7, target, wrong)
    cm = ConfusionMatrix(C, ignore_index=0).update(pred, target)
    official = official_semantickitti_miou(pred, target, C, [0])
    assert cm.miou(absent="zero") == pytest.approx(official, rel=1e-12, abs=1e-14)
    assert cm.miou() > official  # excluding absent classes can only raise the mean here


def test_real_scan_matches_official_formula(kitti_scan, shared_data):
    import yaml

    _, label_path = kitti_scan
    raw = np.fromfile(label_path, dtype=np.uint32) & 0xFFFF
    spec = yaml.safe_load((shared_data / "semantickitti" / "semantic-kitti.yaml").read_text())
    lut = np.zeros(max(spec["learning_map"]) + 1, dtype=np.int64)
    for k, v in spec["learning_map"].items():
        lut[k] = v
    target = lut[raw]
    rng = np.random.default_rng(0)
    pred = np.where(rng.random(len(target)) < 0.8, target, rng.integers(0, 20, len(target)))
    cm = ConfusionMatrix(20, ignore_index=0).update(pred, target)
    assert cm.miou(absent="zero") == pytest.approx(official_semantickitti_miou(pred, target, 20, [0]), rel=1e-12)
    assert cm.matrix.sum() == int((target != 0).sum())


def test_input_types_agree():
    rng = np.random.default_rng(3)
    target = rng.integers(0, 5, 1000)
    pred = rng.integers(0, 5, 1000)
    ref = ConfusionMatrix(5).update(pred, target).matrix
    variants = [
        (pred.astype(np.uint32), target.astype(np.uint32)),
        (pred.astype(np.uint8), target.astype(np.uint8)),
        (pred.astype(np.int16)[:, None], target.astype(np.int16)[:, None]),
        (torch.from_numpy(pred).int(), torch.from_numpy(target).int()),
        (torch.from_numpy(pred).to(torch.uint8), torch.from_numpy(target).to(torch.uint8)),
        (pred.tolist(), target.tolist()),
    ]
    for p, t in variants:
        np.testing.assert_array_equal(ConfusionMatrix(5).update(p, t).matrix, ref)


def test_small_dtypes_do_not_overflow_key():
    # target * C + pred = 19 * 20 + 19 = 399 does not fit uint8
    cm = ConfusionMatrix(20).update(np.array([19], np.uint8), np.array([19], np.uint8))
    assert cm.matrix[19, 19] == 1 and cm.matrix.sum() == 1


def test_bad_input():
    cm = ConfusionMatrix(4, ignore_index=0)
    with pytest.raises(PcsegValueError, match="same shape"):
        cm.update(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(PcsegValueError, match="integer"):
        cm.update(np.zeros(3, np.float32), np.zeros(3, int))
    with pytest.raises(PcsegValueError, match="integer"):
        cm.update(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(PcsegValueError, match=r"target has 2 id\(s\) outside .* e\.g\. 7"):
        cm.update(np.array([1, 1, 1]), np.array([1, 7, 6]))
    with pytest.raises(PcsegValueError, match=r"pred has 1 id\(s\) outside .* e\.g\. -1"):
        cm.update(np.array([1, -1, 1]), np.array([1, 1, 1]))
    with pytest.raises(PcsegValueError, match=r"e\.g\. 4294967295"):
        cm.update(np.array([1, 1], np.uint32), np.array([1, 2**32 - 1], np.uint32))  # .label dtype
    with pytest.raises(PcsegValueError, match="empty"):
        cm.update(np.zeros(0, int), np.zeros(0, int))
    with pytest.raises(PcsegValueError, match="empty"):
        cm.miou()  # nothing counted yet
    assert cm.matrix.sum() == 0  # failed updates counted nothing
    cm.update(np.array([1]), np.array([1]))
    with pytest.raises(PcsegValueError, match="absent"):
        cm.miou(absent="nan")
    with pytest.raises(PcsegValueError, match="ignore_index"):
        ConfusionMatrix(4, ignore_index=9)
    with pytest.raises(PcsegValueError, match="class_names"):
        ConfusionMatrix(4, class_names=["a"])
    with pytest.raises(PcsegValueError, match="num_classes"):
        ConfusionMatrix(0)


def test_reset_merge_and_all_reduce_without_distributed():
    rng = np.random.default_rng(4)
    parts = [(rng.integers(0, 6, 500), rng.integers(0, 6, 500)) for _ in range(3)]
    whole = ConfusionMatrix(6, 0).update(np.concatenate([p for p, _ in parts]), np.concatenate([t for _, t in parts]))
    pieces = [ConfusionMatrix(6, 0).update(p, t) for p, t in parts]
    np.testing.assert_array_equal(merge_all(pieces).matrix, whole.matrix)
    merged = ConfusionMatrix(6, 0)
    for piece in pieces:
        merged.merge(piece)
    np.testing.assert_array_equal(merged.all_reduce().matrix, whole.matrix)  # no-op when not distributed
    merged.reset()
    assert merged.matrix.sum() == 0
    with pytest.raises(PcsegValueError, match="merge"):
        merged.merge(ConfusionMatrix(5, 0))


def _all_reduce_worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    cm = ConfusionMatrix(3).update(np.array([rank, rank]), np.array([0, 1]))
    cm.all_reduce()
    np.save(f"{out_dir}/rank{rank}.npy", cm.matrix)
    dist.destroy_process_group()


def test_all_reduce_sums_over_processes(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")  # fork: no fresh interpreter and torch import per rank
    procs = [ctx.Process(target=_all_reduce_worker, args=(r, 2, str(tmp_path / "init"), str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    expected = [[1, 1, 0], [1, 1, 0], [0, 0, 0]]  # rank 0 predicts 0 twice, rank 1 predicts 1 twice
    for r in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"rank{r}.npy"), expected)


def test_table_and_dict():
    names = ["unlabeled", "car", "road", "tree"]
    cm = ConfusionMatrix(4, 0, names).update(np.array([1, 2, 2, 0]), np.array([1, 2, 1, 2]))
    text = cm.table()
    lines = text.splitlines()
    assert "unlabeled" not in text and "car" in text and "tree" in text
    assert len({len(line) for line in lines[:5]}) == 1  # header, rule and rows are aligned
    d = json.loads(json.dumps(cm.to_dict()))  # NaN written as null, so strict JSON works
    assert d["per_class"]["tree"]["iou"] is None
    assert d["per_class"]["car"]["iou"] == pytest.approx(0.5)
    assert d["per_class"]["car"]["points"] == 2
    assert d["miou"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert d["confusion_matrix"][1] == [0, 1, 1, 0]


def test_plots_write_pngs(tmp_path):
    import matplotlib.image

    from pcseg.metrics import plot_class_iou, plot_confusion_matrix
    from pcseg.metrics.plots import normalized_rows

    cm = ConfusionMatrix(4, 0, ["u", "a", "b", "c"]).update(np.array([0, 1, 2, 2]), np.array([1, 1, 2, 1]))
    norm = normalized_rows(cm)
    # rows a, b, c over columns a, b, c, (ignored): the prediction of 0 on an "a" point is kept
    np.testing.assert_allclose(norm, [[1 / 3, 1 / 3, 0, 1 / 3], [0, 1, 0, 0], [0, 0, 0, 0]])
    for fn, name in ((plot_confusion_matrix, "cm.png"), (plot_class_iou, "iou.png")):
        path = fn(cm, tmp_path / "out" / name)
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cm.png", "iou.png"]  # no temp files left


def test_gpu_parity(device):
    if device != "cuda":
        pytest.skip("needs a CUDA device")
    rng = np.random.default_rng(5)
    target = torch.from_numpy(rng.integers(0, 20, 100_000))
    pred = torch.from_numpy(rng.integers(0, 20, 100_000))
    cpu = ConfusionMatrix(20, 0).update(pred, target)
    gpu = ConfusionMatrix(20, 0).update(pred.cuda(), target.cuda())
    np.testing.assert_array_equal(cpu.matrix, gpu.matrix)
    assert gpu.miou() == pytest.approx(cpu.miou())


def test_numpy_only_use_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from pcseg.metrics import ConfusionMatrix\n"
            "cm = ConfusionMatrix(3, 0).update(np.array([1, 2]), np.array([1, 1]))\n"
            "cm.table(); cm.to_dict()\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
