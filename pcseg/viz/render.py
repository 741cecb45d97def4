"""Headless renders of labeled clouds: ``render`` (one view) and ``render_comparison``
(ground truth | prediction | errors), with legend and an mIoU caption composited in."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.viz import colors as C
from pcseg.viz.camera import is_map_tile, preset
from pcseg.viz.compose import caption_strip, colorbar_panel, hstack, legend_panel, title_strip, vstack

BACKENDS = ("auto", "open3d", "numpy")


@dataclass
class SceneData:
    """What a view needs, as numpy: ``xyz`` float32 (N, 3); optional ``intensity`` float (N,),
    ``rgb`` float (N, 3) in [0, 1], ``labels``/``pred`` int64 (N,) train ids; the class colour
    table uint8 (C, 3), class names and ignored train ids."""

    xyz: np.ndarray
    intensity: np.ndarray | None
    rgb: np.ndarray | None
    labels: np.ndarray | None
    pred: np.ndarray | None
    table: np.ndarray
    names: list
    ignore_index: tuple


def scene_data(points, labels=None, pred=None, label_map=None, colors=None, intensity=None) -> SceneData:
    """Normalise the inputs every view function accepts.

    ``points``: a :class:`pcseg.io.PointCloud` (its raw ``labels`` are mapped with
    ``label_map`` when ``labels`` is not given) or a float array (N, 3), or (N, >=4) with
    intensity in column 3. ``labels``/``pred``: integer (N,) *train* ids.
    """
    from pcseg.io import PointCloud

    rgb = None
    if isinstance(points, PointCloud):
        xyz = points.xyz
        intensity = points.intensity if intensity is None else intensity
        rgb = points.rgb
        if labels is None and points.labels is not None:
            labels = label_map.to_train(points.labels) if label_map is not None else points.labels
    else:
        arr = np.asarray(points)
        if arr.ndim != 2 or arr.shape[1] < 3 or arr.dtype.kind not in "fiu":
            raise PcsegValueError(f"points must be a PointCloud or a numeric (N, 3+) array, got shape {arr.shape}")
        xyz = arr[:, :3]
        if intensity is None and arr.shape[1] >= 4:
            intensity = arr[:, 3]
    xyz = np.asarray(xyz, dtype=np.float32)
    if len(xyz) == 0:
        raise PcsegValueError("points is empty: nothing to render")
    if not np.isfinite(xyz).all():
        raise PcsegValueError(f"points has {int((~np.isfinite(xyz)).any(axis=1).sum())} non-finite row(s)")
    n = len(xyz)

    def ids(values, name):
        if values is None:
            return None
        values = np.asarray(values)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.shape != (n,):
            raise PcsegValueError(f"{name} has shape {values.shape} but points has {n} rows")
        if values.dtype.kind not in "iu":
            raise PcsegValueError(f"{name} must be integer train ids, got dtype {values.dtype}")
        return values.astype(np.int64)

    labels, pred = ids(labels, "labels"), ids(pred, "pred")
    if intensity is not None:
        intensity = np.asarray(intensity, dtype=np.float64).reshape(-1)
        if intensity.shape != (n,):
            raise PcsegValueError(f"intensity has {intensity.size} values but points has {n} rows")
    if label_map is not None:
        num_classes, names, ignore = label_map.num_classes, list(label_map.class_names), tuple(label_map.ignore_index)
    else:
        present = [v for v in (labels, pred) if v is not None]
        num_classes = max((int(v.max()) + 1 for v in present), default=1)
        if colors is not None:
            num_classes = max(num_classes, len(colors))
        names, ignore = [f"class {i}" for i in range(num_classes)], ()
    table = C.class_colors(num_classes, label_map, colors)
    return SceneData(xyz, intensity, rgb, labels, pred, table, names, ignore)


def default_mode(data: SceneData) -> str:
    """pred if a prediction is given, else gt, else rgb, intensity, height (the first available)."""
    if data.pred is not None:
        return "pred"
    if data.labels is not None:
        return "gt"
    if data.rgb is not None:
        return "rgb"
    return "intensity" if data.intensity is not None else "height"


def point_colors(data: SceneData, mode: str) -> np.ndarray:
    """uint8 (N, 3) colours of ``data`` in view ``mode`` (one of :data:`pcseg.viz.colors.MODES`)."""
    need = {"gt": data.labels, "pred": data.pred, "intensity": data.intensity, "rgb": data.rgb}
    if mode not in C.MODES:
        raise PcsegValueError(f"mode must be one of {C.MODES}, got {mode!r}")
    if mode in need and need[mode] is None:
        raise PcsegValueError(f"mode {mode!r} needs {'labels' if mode == 'gt' else mode} for these points")
    if mode == "gt":
        return C.label_colors(data.labels, data.table, "labels")
    if mode == "pred":
        return C.label_colors(data.pred, data.table, "pred")
    if mode == "errors":
        if data.labels is None or data.pred is None:
            raise PcsegValueError("mode 'errors' needs both labels and pred")
        return C.error_colors(data.pred, data.labels, data.ignore_index)
    if mode == "intensity":
        return C.scalar_colors(data.intensity, "viridis")
    if mode == "height":
        return C.scalar_colors(data.xyz[:, 2], "turbo")
    return C.rgb_colors(data.rgb)


def confusion(data: SceneData):
    """A :class:`pcseg.metrics.ConfusionMatrix` of ``data.pred`` against ``data.labels``, or None
    when either is missing or no point is labeled."""
    if data.labels is None or data.pred is None:
        return None
    from pcseg.metrics import ConfusionMatrix

    cm = ConfusionMatrix(len(data.table), data.ignore_index, data.names).update(data.pred, data.labels)
    return cm if cm.matrix.sum() else None


def class_entries(data: SceneData, cm=None) -> list:
    """Legend rows ``(rgb, text)`` for the classes present in labels or pred (ignored ones too,
    they have a colour on screen), with each class's IoU when ``cm`` is given."""
    present = np.zeros(len(data.table), dtype=bool)
    for v in (data.labels, data.pred):
        if v is not None:
            present[np.unique(v)] = True
    iou = cm.iou() if cm is not None else None
    entries = []
    for c in np.flatnonzero(present):
        text = data.names[c]
        if iou is not None and np.isfinite(iou[c]):
            text += f"  {100 * iou[c]:.1f}"
        entries.append((tuple(int(x) for x in data.table[c]), text))
    return entries


def error_entries() -> list:
    return [(C.CORRECT_GREY, "correct"), (C.WRONG_RED, "wrong"), (C.IGNORED_PALE, "not scored")]


def metrics_caption(cm, n_points: int) -> str:
    if cm is None:
        return f"{n_points:,} points"
    return (f"mIoU {100 * cm.miou():.2f}%   OA {100 * cm.accuracy():.2f}%   "
            f"mAcc {100 * cm.mean_accuracy():.2f}%   {n_points:,} points")


class Renderer:
    """Renders coloured points with Open3D (``backend="open3d"``), the numpy splat
    (``"numpy"``), or Open3D falling back to numpy when it cannot start (``"auto"``).
    ``self.backend`` says which one is in use."""

    def __init__(self, width: int, height: int, background=(255, 255, 255), backend: str = "auto"):
        if backend not in BACKENDS:
            raise PcsegValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if width < 16 or height < 16:
            raise PcsegValueError(f"image size {width}x{height} is too small (at least 16x16)")
        self.width, self.height, self.background = int(width), int(height), tuple(int(c) for c in background)
        self._scene = None
        self.backend = "numpy"
        if backend in ("auto", "open3d"):
            try:
                from pcseg.viz.offscreen import OffscreenScene

                self._scene = OffscreenScene(self.width, self.height, self.background)
                self.backend = "open3d"
            except Exception as exc:  # no open3d, no Vulkan/EGL: the splat renderer still works
                if backend == "open3d":
                    raise PcsegValueError(f"Open3D offscreen rendering is unavailable: {exc}") from exc
                warnings.warn(f"Open3D offscreen rendering unavailable ({exc}); using the numpy point renderer",
                              RuntimeWarning, stacklevel=3)

    def render(self, xyz, colors, camera, point_size: float = 2.0) -> np.ndarray:
        """uint8 (height, width, 3)."""
        if self._scene is not None:
            return self._scene.render(xyz, colors, camera, point_size)
        from pcseg.viz.splat import render_splat

        return render_splat(xyz, colors, camera, self.width, self.height, point_size, self.background)


def render(points, labels=None, pred=None, *, label_map=None, mode: str | None = None,
           view: str = "perspective", width: int = 800, height: int = 500, point_size: float = 2.0,
           background=(255, 255, 255), legend: bool = True, caption: str | bool | None = True,
           colors=None, intensity=None, backend: str = "auto", north_up: bool | None = None) -> np.ndarray:
    """Render a cloud headlessly and return the image, uint8 (H, W, 3) RGB.

    Args:
        points: :class:`pcseg.io.PointCloud` or float (N, 3) / (N, 4 with intensity) array, metres.
        labels, pred: integer (N,) train ids (ground truth, prediction), optional.
        label_map: :class:`pcseg.io.LabelMap` for colours, names and ignored ids.
        mode: ``gt``, ``pred``, ``errors`` (correct grey, wrong red), ``intensity``, ``height``,
            ``rgb``; default: pred, gt, rgb, intensity, height, the first available.
        view: ``perspective`` or ``bev`` (bird's-eye, orthographic).
        width, height: size in pixels of the rendered points; the legend (right) and caption
            (top) make the returned image larger.
        point_size: pixels. background: RGB 0..255.
        legend: add the class (or colour-bar) legend panel.
        caption: True for the automatic one (mIoU, OA, mAcc when labels and pred are both given,
            and the point count), a string to prefix it, False/None for none.
        colors: (C, 3) colours overriding the label map's.
        backend: ``auto`` (Open3D, numpy splat if Open3D cannot render), ``open3d``, ``numpy``.
        north_up: frame the cloud as a map tile (whole tile, +y north up in BEV); None = when
            ``points`` is a PointCloud read from a LAS/LAZ file.

    The points region shows class colours exactly (no lighting, tone mapping or anti-aliasing).
    """
    data = scene_data(points, labels, pred, label_map, colors, intensity)
    mode = mode or default_mode(data)
    point_rgb = point_colors(data, mode)
    camera = preset(data.xyz, view, width / height, north_up=is_map_tile(points) if north_up is None else north_up)
    renderer = Renderer(width, height, background, backend)
    image = renderer.render(data.xyz, point_rgb, camera, point_size)
    cm = confusion(data)
    parts = [image]
    if legend:
        parts.append(_legend_for(data, mode, cm, height, background))
    image = hstack(parts, background=background)
    if caption:
        text = metrics_caption(cm, len(data.xyz))
        if isinstance(caption, str):
            text = f"{caption}   {text}"
        image = vstack([caption_strip(image.shape[1], text, background), image], background)
    return image


def _legend_for(data: SceneData, mode: str, cm, height: int, background) -> np.ndarray:
    if mode in ("gt", "pred"):
        return legend_panel(class_entries(data, cm), height, "IoU %" if cm is not None else "classes", background)
    if mode == "errors":
        return legend_panel(error_entries(), height, "errors", background)
    if mode in ("intensity", "height"):
        values = data.intensity if mode == "intensity" else data.xyz[:, 2]
        lo, hi = C.scalar_range(values)
        ramp = C.scalar_colors(np.linspace(lo, hi, 256), "viridis" if mode == "intensity" else "turbo", (lo, hi))
        return colorbar_panel(ramp, lo, hi, "intensity" if mode == "intensity" else "height (m)", height, background)
    return legend_panel([], height, "rgb", background)


def render_comparison(points, labels, pred, *, label_map=None, view: str = "perspective",
                      panel_width: int = 480, panel_height: int = 360, point_size: float = 2.0,
                      background=(255, 255, 255), caption: str | bool | None = True, colors=None,
                      backend: str = "auto", return_layout: bool = False, north_up: bool | None = None):
    """Ground truth | prediction | errors side by side, with titles, one legend (classes with
    their IoU, then the error colours) and an mIoU caption. Returns uint8 (H, W, 3), or
    ``(image, layout)`` with ``return_layout=True`` where ``layout`` maps ``"gt"``, ``"pred"``,
    ``"errors"``, ``"legend"`` to ``(top, left, height, width)`` pixel boxes of the image.

    ``points``, ``labels``, ``pred``, ``label_map``, ``north_up``: as in :func:`render` (labels and
    pred required).
    """
    data = scene_data(points, labels, pred, label_map, colors)
    if data.labels is None or data.pred is None:
        raise PcsegValueError("render_comparison needs both labels (ground truth) and pred")
    camera = preset(data.xyz, view, panel_width / panel_height,
                    north_up=is_map_tile(points) if north_up is None else north_up)
    renderer = Renderer(panel_width, panel_height, background, backend)
    cm = confusion(data)
    scored = ~np.isin(data.labels, list(data.ignore_index)) if data.ignore_index else np.ones(len(data.labels), bool)
    wrong = float((data.pred != data.labels)[scored].mean()) if scored.any() else 0.0
    titles = {"gt": "ground truth", "pred": "prediction", "errors": f"errors ({100 * wrong:.1f}% of scored points wrong)"}
    panels = []
    for mode in ("gt", "pred", "errors"):
        shot = renderer.render(data.xyz, point_colors(data, mode), camera, point_size)
        panels.append(vstack([title_strip(panel_width, titles[mode], background), shot], background))
    entries = class_entries(data, cm) + [(None, "errors")] + error_entries()
    legend = legend_panel(entries, panels[0].shape[0], "IoU %" if cm is not None else "classes", background)
    gap = 6
    body = hstack(panels + [legend], gap=gap, background=background)
    top = 0
    if caption:
        text = metrics_caption(cm, len(data.xyz))
        if isinstance(caption, str):
            text = f"{caption}   {text}"
        strip = caption_strip(body.shape[1], text, background)
        top = strip.shape[0]
        body = vstack([strip, body], background)
    if not return_layout:
        return body
    title_h = panels[0].shape[0] - panel_height
    layout = {}
    for i, mode in enumerate(("gt", "pred", "errors")):
        layout[mode] = (top + title_h, i * (panel_width + gap), panel_height, panel_width)
    layout["legend"] = (top, 3 * (panel_width + gap), legend.shape[0], legend.shape[1])
    return body, layout
