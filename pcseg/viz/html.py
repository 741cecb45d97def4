"""One self-contained interactive HTML page of a labelled cloud (WebGL through plotly.js).

The page embeds plotly.js and the cloud itself (float32 xyz and uint8 class ids, base64), so it
opens offline in any browser and can be mailed or attached as one file. Buttons switch between
ground truth, prediction and errors; the legend (one column) lists every class present with its
colour and IoU, headed by the mIoU; hovering a point shows its classes and coordinates. The
colours are those of the PNG renders (:mod:`pcseg.viz.colors`).

Only the class ids travel in the file; the page turns them into colours and hover texts, so a
124k-point scan is a page of about 6 MB, most of it plotly.js.
"""

from __future__ import annotations

import base64
import html
import json

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.viz.colors import CORRECT_GREY, IGNORED_PALE, WRONG_RED, class_colors


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _ids(values, n: int, num_classes: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    ids = np.asarray(values).reshape(-1)
    if ids.dtype.kind not in "iu" or len(ids) != n:
        raise PcsegValueError(f"{name} must be {n} integer train ids, got {ids.dtype} ({len(ids)})")
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        raise PcsegValueError(f"{name} has ids outside 0..{num_classes - 1}: pass train ids with their label map")
    return ids.astype(np.uint8 if num_classes <= 256 else np.uint16)


def page_data(points, labels=None, pred=None, *, label_map=None, class_names=None, colors=None,
              title: str = "pcseg view") -> dict:
    """The JSON-ready description the page draws: points, ids, colours, names, IoU.

    points: PointCloud or float (N, 3+) array (metres); labels / pred: int (N,) train ids or None.
    Returns a dict (see :func:`write_html`); raises :class:`PcsegValueError` for bad shapes.
    """
    xyz = np.asarray(getattr(points, "xyz", points), dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] < 3 or len(xyz) == 0:
        raise PcsegValueError(f"points must be a non-empty (N, 3) array, got shape {xyz.shape}")
    xyz = xyz[:, :3]
    offset = getattr(points, "offset", None)
    if labels is None and pred is None:
        labels = getattr(points, "labels", None)
    num_classes = (label_map.num_classes if label_map is not None else
                   len(class_names) if class_names is not None else
                   int(max([np.max(v) for v in (labels, pred) if v is not None], default=0)) + 1)
    names = list(label_map.class_names if label_map is not None else class_names or
                 [f"class {i}" for i in range(num_classes)])
    ignore = list(label_map.ignore_index) if label_map is not None else []
    gt, pr = _ids(labels, len(xyz), num_classes, "labels"), _ids(pred, len(xyz), num_classes, "pred")
    iou, miou = None, None
    if gt is not None and pr is not None:
        from pcseg.metrics import ConfusionMatrix

        cm = ConfusionMatrix(num_classes, ignore_index=ignore, class_names=names).update(pr, gt)
        iou = [None if not np.isfinite(v) else round(float(v), 4) for v in cm.iou()]
        miou = float(cm.miou())
    return {
        "title": title,
        "n": int(len(xyz)),
        "offset": [float(o) for o in (offset if offset is not None else (0.0, 0.0, 0.0))],
        "xyz": _b64(xyz.astype("<f4")),  # local to the cloud's offset, as PointCloud keeps them
        "id_bytes": 1 if num_classes <= 256 else 2,
        "gt": None if gt is None else _b64(gt.astype(gt.dtype.newbyteorder("<"))),
        "pred": None if pr is None else _b64(pr.astype(pr.dtype.newbyteorder("<"))),
        "names": names,
        "colors": class_colors(num_classes, label_map, colors).tolist(),
        "ignore": ignore,
        "iou": iou,
        "miou": miou,
        "error_colors": [list(CORRECT_GREY), list(WRONG_RED), list(IGNORED_PALE)],
    }


def html_page(data: dict, point_size: float = 1.5) -> str:
    """The complete HTML text for :func:`page_data`'s ``data`` (plotly.js inlined)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise PcsegValueError("the HTML view needs plotly: pip install plotly (open3d installs it too)") from None

    from pcseg.viz.html_template import PAGE

    payload = json.dumps(data).replace("</", "<\\/")
    return (PAGE.replace("%TITLE%", html.escape(data["title"]))
            .replace("%POINT_SIZE%", json.dumps(float(point_size)))
            .replace("%DATA%", payload)
            .replace("%PLOTLY%", get_plotlyjs()))


def write_html(path, points, labels=None, pred=None, *, label_map=None, class_names=None, colors=None,
               title: str = "pcseg view", point_size: float = 1.5):
    """Write the interactive page of one cloud to ``path`` (atomic); returns the path.

    points: PointCloud or float (N, 3+) array; labels / pred: int (N,) train ids (either may be
    None); label_map gives names, colours and ignored ids (else ``class_names`` / ``colors``).
    """
    from pathlib import Path

    from pcseg.atomic import atomic_write_bytes

    data = page_data(points, labels, pred, label_map=label_map, class_names=class_names, colors=colors,
                     title=title)
    path = Path(path)
    atomic_write_bytes(path, html_page(data, point_size).encode("utf-8"))
    return path


class NotebookView:
    """What :func:`pcseg.viz.show` returns in Jupyter: displays the page inline (an iframe).

    ``_repr_html_`` embeds the page with ``srcdoc``, so the notebook stays self-contained.
    """

    def __init__(self, page: str, height: int = 620):
        self.page, self.height = page, int(height)

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.page, quote=True)}" style="width:100%;'
                f'height:{self.height}px;border:0" sandbox="allow-scripts"></iframe>')
