"""``pcseg demo``: a newcomer's first five minutes, end to end, with no download and no GPU.

Generate a few synthetic scans (or read the user's), segment them with a bundled model, print the
per-class table with mIoU, point accuracy and the time per scan, write the
ground truth | prediction | errors render and the metric plots, and open the viewer when a display
exists.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pcseg.errors import PcsegValueError

# seeds far from the ones the bundled models were trained on (configs use small seeds)
HELD_OUT_SEED = 900_000


@dataclass
class DemoScan:
    """One scan as the demo saw it: the cloud, its train-id ground truth (or None), the prediction."""

    name: str
    cloud: object
    target: np.ndarray | None
    pred: np.ndarray
    seconds: float


@dataclass
class DemoResult:
    scans: list[DemoScan] = field(default_factory=list)
    confusion: object = None
    files: list[Path] = field(default_factory=list)

    @property
    def seconds_per_scan(self) -> float:
        return float(np.mean([s.seconds for s in self.scans])) if self.scans else float("nan")


def _load_inputs(inputs, labels, label_map, num_scans, sensor, log):
    """Yield (name, PointCloud, train-id target or None) for the user's files or synthetic scans."""
    from pcseg.io import read_labels, read_points
    from pcseg.io.labels import kitti_label_path

    if inputs:
        if labels and len(labels) != len(inputs):
            raise PcsegValueError(f"--labels got {len(labels)} files for {len(inputs)} --input files")
        for i, path in enumerate(map(Path, inputs)):
            cloud = read_points(path)
            label_path = Path(labels[i]) if labels else kitti_label_path(path)
            target = None
            if label_path is not None:
                raw = read_labels(label_path, num_points=len(cloud))
                # Open3D-ML's .npy labels are already train ids; .label files hold raw ids
                target = raw if label_path.suffix == ".npy" else label_map.to_train(raw)
            elif cloud.labels is not None:
                target = label_map.to_train(cloud.labels)
            yield path.stem, cloud, target
        return
    from pcseg.synth import lidar_scan

    for i in range(num_scans):
        seed = HELD_OUT_SEED + i
        log(f"generating synthetic {sensor} scan (seed {seed})")
        cloud = lidar_scan(seed, sensor=sensor)
        yield f"synthetic_{seed}", cloud, label_map.to_train(cloud.labels)


def display_available() -> bool:
    """True when a window can open (an X11 or Wayland display is set)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_demo(
    out_dir="pcseg_demo",
    inputs=(),
    labels=(),
    model="outdoor",
    num_scans=2,
    sensor="hdl64",
    device="cpu",
    render=True,
    view=None,
    log=print,
    threads=None,
) -> DemoResult:
    """Segment, score and render; returns what it did. See the module docstring.

    Args:
        out_dir: folder for renders (``<scan>_comparison.png``), plots and ``metrics.json``.
        inputs: point-cloud files to segment instead of synthetic scans.
        labels: ground-truth label files, one per input (found automatically in the
            SemanticKITTI layout); without them scans are segmented but not scored.
        model: bundled street-scan checkpoint (``pcseg.pretrained.bundled_for("street")``):
            ``outdoor`` (default), ``outdoor_synthetic``, ``realtime``, ``panoptic``, ``minkunet`` or ``pointnet2``.
        num_scans: synthetic scans to generate when no ``inputs`` are given.
        device: ``cpu`` or ``cuda``.
        render: write the ground truth | prediction | errors image per scan.
        view: open the interactive viewer; ``None`` opens it when a display exists.
        threads: CPU threads for the network; None = automatic (see :class:`pcseg.Segmenter`).
    """
    from pcseg.engine.segmenter import Segmenter
    from pcseg.metrics import ConfusionMatrix
    from pcseg.pretrained import checkpoint_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint_path(model)
    seg = Segmenter.from_checkpoint(ckpt, device=device, threads=threads)
    label_map = seg.label_map
    log(f"model: {type(seg.model).__name__} from {ckpt.name} ({label_map.num_classes} classes, {device})")

    result = DemoResult(confusion=ConfusionMatrix(label_map.num_classes, label_map.ignore_index, label_map.class_names))
    for name, cloud, target in _load_inputs(inputs, labels, label_map, num_scans, sensor, log):
        start = time.perf_counter()
        pred = seg(cloud)
        seconds = time.perf_counter() - start
        scan = DemoScan(name, cloud, target, pred, seconds)
        result.scans.append(scan)
        line = f"{name}: {len(cloud):,} points segmented in {seconds:.2f} s"
        if target is not None:
            result.confusion.update(pred, target)
            one = ConfusionMatrix(label_map.num_classes, label_map.ignore_index).update(pred, target)
            line += f", mIoU {100 * one.miou():.1f}%, accuracy {100 * one.accuracy():.1f}%"
        log(line)
        if render:
            result.files.append(_render_scan(scan, label_map, out))

    scored = result.confusion.matrix.sum() > 0
    if scored:
        log("")
        log(result.confusion.table())
        log(f"mIoU {100 * result.confusion.miou():.1f}%  point accuracy {100 * result.confusion.accuracy():.1f}%  "
            f"mean class accuracy {100 * result.confusion.mean_accuracy():.1f}%")
        result.files += _write_reports(result, model, out, label_map.colors)
    log(f"time per scan: {result.seconds_per_scan:.2f} s on {device}")
    for path in result.files:
        log(f"wrote {path}")

    if view or (view is None and display_available()):
        from pcseg.viz import show

        first = result.scans[0]
        show(first.cloud, labels=first.target, pred=first.pred, label_map=label_map)
    return result


def _render_scan(scan: DemoScan, label_map, out: Path) -> Path:
    """ground truth | prediction | errors when the scan has ground truth, else the prediction."""
    from pcseg.viz import render, render_comparison, save_png

    if scan.target is not None:
        image = render_comparison(scan.cloud, scan.target, scan.pred, label_map=label_map)
        return save_png(image, out / f"{scan.name}_comparison.png")
    image = render(scan.cloud, pred=scan.pred, label_map=label_map)
    return save_png(image, out / f"{scan.name}_prediction.png")


def _write_reports(result: DemoResult, model: str, out: Path, colors=None) -> list[Path]:
    """metrics.json and the plots; ``colors`` (C, 3) uint8 colour the IoU bars as ``pcseg score`` does."""
    from pcseg.atomic import atomic_write_text
    from pcseg.metrics.plots import plot_class_iou, plot_confusion_matrix

    report = result.confusion.to_dict()
    report["model"] = model
    report["seconds_per_scan"] = result.seconds_per_scan
    report["scans"] = [s.name for s in result.scans]
    metrics_path = out / "metrics.json"
    atomic_write_text(metrics_path, json.dumps(report, indent=2))
    return [
        metrics_path,
        plot_confusion_matrix(result.confusion, out / "confusion_matrix.png"),
        plot_class_iou(result.confusion, out / "class_iou.png", colors=colors),
    ]
