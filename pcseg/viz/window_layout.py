"""Pure layout decisions of the interactive window (no open3d, no display needed).

Sizes are in pixels; a rectangle is ``(x, y, width, height)`` with y growing downwards.
``em`` is the GUI font's height in pixels (Open3D's ``window.theme.font_size``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import numpy as np

#: window size used when the screen size cannot be read (fits a 1366x768 laptop screen)
DEFAULT_WINDOW = (1280, 720)
#: the smallest window the panel and a useful view of the cloud fit in
MIN_WINDOW = (800, 560)
#: no bigger than this even on a huge (or multi-monitor) screen
MAX_WINDOW = (1920, 1200)


def window_size(screen: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) of the window for a screen of ``screen`` = (width, height) pixels, or for
    an unknown screen (None: :data:`DEFAULT_WINDOW`).

    The window takes 92% of the screen's width and 85% of its height (room for a title bar,
    a task bar and the window's border), within :data:`MIN_WINDOW`..:data:`MAX_WINDOW`, and
    never more than the screen itself. 1400x900 -> 1288x765; 1920x1080 -> 1766x918.
    """
    if screen is None or min(screen) <= 0:
        return DEFAULT_WINDOW
    sw, sh = int(screen[0]), int(screen[1])
    w = min(max(int(sw * 0.92), MIN_WINDOW[0]), MAX_WINDOW[0], sw)
    h = min(max(int(sh * 0.85), MIN_WINDOW[1]), MAX_WINDOW[1], sh)
    return w, h


def screen_size() -> tuple[int, int] | None:
    """(width, height) of the screen the window will open on, or None when it cannot be read.

    X11 (Linux, Xvfb, XWayland): the default screen of ``$DISPLAY`` through libX11; Windows:
    the primary monitor. Elsewhere None (Open3D's GUI has no call for it).
    """
    try:
        if sys.platform == "win32":
            user32 = ctypes.windll.user32  # type: ignore[attr-defined]
            return int(user32.GetSystemMetrics(0)), int(user32.GetSystemMetrics(1))
        if not os.environ.get("DISPLAY"):
            return None
        name = ctypes.util.find_library("X11")
        if name is None:
            return None
        x11 = ctypes.CDLL(name)
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        for fn in (x11.XDefaultScreen, x11.XCloseDisplay):
            fn.argtypes = [ctypes.c_void_p]
        x11.XDisplayWidth.argtypes = x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
        display = x11.XOpenDisplay(None)
        if not display:
            return None
        try:
            screen = x11.XDefaultScreen(display)
            size = int(x11.XDisplayWidth(display, screen)), int(x11.XDisplayHeight(display, screen))
        finally:
            x11.XCloseDisplay(display)
        return size if min(size) > 0 else None
    except (OSError, AttributeError):
        return None


def panel_width(window_width: int, em: float) -> int:
    """Width of the settings panel: room for the legend's longest rows (about 21 em), at most
    40% of the window so the cloud keeps most of it."""
    return int(min(max(21 * em, 240), 0.4 * window_width))


def split_frames(content: tuple[int, int, int, int], em: float) -> dict:
    """``{"scene": rect, "panel": rect}``: the 3D view on the left and the panel on the right
    of the window's ``content`` rect, side by side, together covering it exactly."""
    x, y, w, h = (int(v) for v in content)
    pw = panel_width(w, em)
    return {"scene": (x, y, w - pw, h), "panel": (x + w - pw, y, pw, h)}


def overlaps(a, b) -> bool:
    """Whether rects ``a`` and ``b`` share any pixel (touching edges do not count)."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def legend_table(names, colors, iou=None, labels=None, pred=None, ignore=()) -> list:
    """Rows ``(train id, rgb, name, IoU text)`` of the window's legend: every class present in
    ``labels`` or ``pred`` (int (N,) train ids), in train-id order; IoU text as a percentage
    with one decimal from ``iou`` (float (C,), NaN where undefined), ``"-"`` when the class has
    no IoU (no prediction, an ignored class, or NaN)."""
    present = np.zeros(len(names), dtype=bool)
    for v in (labels, pred):
        if v is not None:
            present[np.unique(np.asarray(v))] = True
    rows = []
    for c in np.flatnonzero(present):
        c = int(c)
        value = None if iou is None or c in set(ignore) else float(iou[c])
        text = f"{100 * value:.1f}" if value is not None and np.isfinite(value) else "-"
        rows.append((c, tuple(int(v) for v in colors[c]), str(names[c]), text))
    return rows


def summary_line(cm) -> str:
    """The panel's score line, ``"mIoU 48.23%   OA 85.10%   mAcc 60.00%"`` (``cm`` a
    :class:`pcseg.metrics.ConfusionMatrix`), or a note when there is nothing to score (None)."""
    if cm is None:
        return "no IoU: needs labels and a prediction"
    return f"mIoU {100 * cm.miou():.2f}%   OA {100 * cm.accuracy():.2f}%   mAcc {100 * cm.mean_accuracy():.2f}%"
