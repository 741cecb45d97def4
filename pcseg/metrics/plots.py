"""PNG reports of a :class:`ConfusionMatrix` (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcseg.atomic import atomic_path


def _figure(width_in: float, height_in: float):
    # Agg through the object API: never touches pyplot's global backend or a display
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save_atomic(fig, path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def normalized_rows(cm) -> np.ndarray:
    """float64 (K, K or K+1) confusion of the K evaluated classes, each row divided by the
    class's target count (rows with no target point are zero). When the matrix has ignore ids,
    a last column holds the fraction predicted as any ignored id (those are errors too)."""
    keep = cm.evaluated
    full = cm.matrix.astype(np.float64)[keep]
    m = full[:, keep]
    if not keep.all():
        m = np.concatenate([m, full[:, ~keep].sum(axis=1, keepdims=True)], axis=1)
    rows = full.sum(axis=1, keepdims=True)
    return np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)


def plot_confusion_matrix(cm, path, title: str = "Confusion matrix (rows: ground truth, normalized)") -> Path:
    """Write the row-normalized confusion matrix of the evaluated classes as a PNG with class
    names on both axes and the percentage in each cell (a last "ignored" column when the
    matrix has ignore ids). Returns the path."""
    names = [n for n, k in zip(cm.class_names, cm.evaluated) if k]
    norm = normalized_rows(cm)
    k = len(names)
    col_names = names + (["(ignored)"] if norm.shape[1] > k else [])
    side = max(4.0, 0.45 * k + 2.5)
    fig = _figure(side + 1.5, side)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(col_names)), col_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title(title, fontsize=10)
    if k <= 30:
        for i in range(norm.shape[0]):
            for j in range(norm.shape[1]):
                if norm[i, j] >= 0.005:
                    ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return _save_atomic(fig, path)


def plot_class_iou(cm, path, title: str | None = None, colors=None) -> Path:
    """Write a horizontal bar chart of per-class IoU (%) of the evaluated classes, absent
    classes marked "n/a", with mIoU in the title. ``colors``: optional (C, 3) uint8 RGB per
    class (e.g. a label map's colours). Returns the path."""
    keep = np.flatnonzero(cm.evaluated)
    iou = cm.iou()[keep]
    names = [cm.class_names[c] for c in keep]
    if colors is not None:
        bar_colors = [tuple(np.asarray(colors[c], dtype=np.float64) / 255.0) for c in keep]
    else:
        bar_colors = ["tab:blue"] * len(keep)
    fig = _figure(7.0, max(3.0, 0.3 * len(keep) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    values = np.nan_to_num(iou, nan=0.0) * 100
    ax.barh(range(len(keep)), values, color=bar_colors, edgecolor="black", linewidth=0.5)
    for i, v in enumerate(iou):
        ax.text((0 if not np.isfinite(v) else 100 * v) + 1, i, "n/a" if not np.isfinite(v) else f"{100 * v:.1f}",
                va="center", fontsize=7)
    ax.set_yticks(range(len(keep)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("IoU (%)")
    ax.set_title(title or f"Per-class IoU, mIoU {100 * cm.miou():.2f}%", fontsize=10)
    fig.tight_layout()
    return _save_atomic(fig, path)
