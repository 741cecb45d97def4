"""Composing images: legend and colour-bar panels, caption and title strips, side by side.

Text is drawn with matplotlib's Agg canvas into its own strip or panel; the rendered points
are never resampled, and colour swatches are written with numpy, so their colours are exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcseg.atomic import atomic_path

ROW_HEIGHT = 18  # legend row, pixels
SWATCH = 12  # legend swatch side, pixels
CAPTION_HEIGHT = 28
TITLE_HEIGHT = 22
TEXT_COLOR = (20, 20, 20)


def _ink(background) -> tuple:
    """Dark text on light backgrounds, light text on dark ones."""
    return TEXT_COLOR if np.mean(background) > 110 else (235, 235, 235)


def text_image(width: int, height: int, items, background=(255, 255, 255), color=None) -> np.ndarray:
    """uint8 (height, width, 3) filled with ``background`` and the text ``items``: a list of
    ``(x_px, y_px, text, fontsize_pt, bold)`` with (x, y) the left end of the text's vertical
    centre, measured from the top-left corner."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = max(int(width), 1), max(int(height), 1)
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    fig.patch.set_facecolor(np.asarray(background) / 255.0)
    ink = np.asarray(color or _ink(background)) / 255.0
    for x, y, text, size, bold in items:
        fig.text(x / width, 1 - y / height, text, fontsize=size, ha="left", va="center", color=ink,
                 fontweight="bold" if bold else "normal", family="DejaVu Sans")
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3]
    return np.ascontiguousarray(image[:height, :width])


def legend_panel(entries, height: int, title: str | None = None, background=(255, 255, 255),
                 width: int | None = None) -> np.ndarray:
    """uint8 (H, W, 3) legend: one row per ``(rgb, text)`` entry, a square swatch of exactly
    that colour then the text (``rgb`` None: a bold heading row without swatch), all in one
    column so a heading always stays above its entries. ``H`` is ``height``, or taller when the
    rows need it (:func:`hstack` pads the images beside it)."""
    top = 8 + (ROW_HEIGHT if title else 0)
    height = max(int(height), top + len(entries) * ROW_HEIGHT + 6)
    rows_fit = max(1, len(entries))
    longest = max((len(text) for _, text in entries), default=8)
    column_width = 28 + int(longest * 6.6)
    width = width or max(column_width + 10, int(len(title or "") * 7.5) + 16)
    items, swatches = [], []
    if title:
        items.append((8, 8 + ROW_HEIGHT / 2, title, 9, True))
    for i, (rgb, text) in enumerate(entries):
        col, row = divmod(i, rows_fit)
        x = 8 + col * column_width
        y = top + row * ROW_HEIGHT + ROW_HEIGHT / 2
        if rgb is None:
            items.append((x, y, text, 9, True))
            continue
        items.append((x + SWATCH + 6, y, text, 8, False))
        swatches.append((x, int(y - SWATCH / 2), rgb))
    panel = text_image(width, height, items, background)
    for x, y, rgb in swatches:
        panel[y:y + SWATCH, x:x + SWATCH] = (60, 60, 60)  # a thin frame keeps pale swatches visible
        panel[y + 1:y + SWATCH - 1, x + 1:x + SWATCH - 1] = np.asarray(rgb, dtype=np.uint8)
    return panel


def colorbar_panel(colors_low_to_high: np.ndarray, low: float, high: float, label: str, height: int,
                   background=(255, 255, 255), width: int = 120) -> np.ndarray:
    """uint8 (height, width, 3): a vertical colour bar (high at the top) with its range."""
    bar_top, bar_bottom = 34, height - 20
    items = [(8, 12, label, 9, True), (36, bar_top, f"{high:.3g}", 8, False), (36, bar_bottom, f"{low:.3g}", 8, False)]
    panel = text_image(width, height, items, background)
    n = max(bar_bottom - bar_top, 2)
    ramp = np.asarray(colors_low_to_high, dtype=np.uint8)
    rows = ramp[np.linspace(len(ramp) - 1, 0, n).round().astype(int)]
    panel[bar_top:bar_top + n, 10:28] = rows[:, None, :]
    return panel


def caption_strip(width: int, text: str, background=(255, 255, 255), height: int = CAPTION_HEIGHT) -> np.ndarray:
    """uint8 (height, width, 3) strip with ``text`` in bold on the left."""
    return text_image(width, height, [(8, height / 2, text, 10, True)], background)


def title_strip(width: int, text: str, background=(255, 255, 255), height: int = TITLE_HEIGHT) -> np.ndarray:
    """uint8 (height, width, 3) strip with ``text``, for a panel's name."""
    return text_image(width, height, [(8, height / 2, text, 9, False)], background)


def pad_to(image: np.ndarray, height: int, width: int, background=(255, 255, 255)) -> np.ndarray:
    """``image`` placed top-left on a ``height`` x ``width`` canvas of ``background``."""
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[:] = np.asarray(background, dtype=np.uint8)
    out[: image.shape[0], : image.shape[1]] = image
    return out


def hstack(images, gap: int = 0, background=(255, 255, 255)) -> np.ndarray:
    """Images side by side, top-aligned, ``gap`` pixels of background between them."""
    height = max(im.shape[0] for im in images)
    parts = []
    for i, im in enumerate(images):
        if i and gap:
            parts.append(pad_to(np.zeros((0, 0, 3), np.uint8), height, gap, background))
        parts.append(pad_to(im, height, im.shape[1], background))
    return np.concatenate(parts, axis=1)


def vstack(images, background=(255, 255, 255)) -> np.ndarray:
    """Images one above the other, left-aligned."""
    width = max(im.shape[1] for im in images)
    return np.concatenate([pad_to(im, im.shape[0], width, background) for im in images], axis=0)


def save_png(image: np.ndarray, path) -> Path:
    """Write uint8 (H, W, 3) ``image`` to ``path`` as PNG, atomically (temp file + rename)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB").save(tmp, format="PNG")
    return Path(path)
