"""The viewer window's layout decisions and panel texts, without a display, and the XWD reader
that captures the window in tests and docs (checked on dumps built here byte by byte)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pcseg.errors import PointCloudFormatError
from pcseg.viz.window_layout import (DEFAULT_WINDOW, legend_table, overlaps, panel_width, screen_size, split_frames,
                                     summary_line, window_size)
from pcseg.viz.xwd import parse_xwd


@pytest.mark.parametrize("screen, expected", [
    ((1400, 900), (1288, 765)),    # the Xvfb screen of the issue: 92% x 85%
    ((1920, 1080), (1766, 918)),
    ((1366, 768), (1256, 652)),
    ((800, 600), (800, 560)),      # the minimum window, still inside the screen
    ((640, 480), (640, 480)),      # below the minimum: never larger than the screen
    ((7680, 2160), (1920, 1200)),  # two 4K monitors side by side: capped
])
def test_window_fits_the_screen(screen, expected):
    assert window_size(screen) == expected
    w, h = window_size(screen)
    assert w <= screen[0] and h <= screen[1]


def test_unknown_screen_gets_a_size_that_fits_a_small_laptop():
    assert window_size(None) == DEFAULT_WINDOW
    assert DEFAULT_WINDOW[0] <= 1366 and DEFAULT_WINDOW[1] <= 768
    assert window_size((0, 0)) == DEFAULT_WINDOW


def test_no_display_means_no_screen_size(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    if __import__("sys").platform != "win32":
        assert screen_size() is None


@pytest.mark.parametrize("content, em", [((0, 0, 1288, 765), 16), ((0, 0, 800, 560), 16), ((10, 30, 3000, 1600), 32)])
def test_scene_and_panel_split_the_window_exactly(content, em):
    frames = split_frames(content, em)
    scene, panel = frames["scene"], frames["panel"]
    assert not overlaps(scene, panel)
    assert scene[0] == content[0] and scene[0] + scene[2] == panel[0]      # side by side, no gap
    assert panel[0] + panel[2] == content[0] + content[2]
    assert scene[1] == panel[1] == content[1] and scene[3] == panel[3] == content[3]
    assert panel[2] <= 0.4 * content[2]                                      # the cloud keeps most of it
    assert panel[2] == panel_width(content[2], em)


def test_panel_width_grows_with_the_font_until_40_percent():
    assert panel_width(1288, 16) == 336
    assert panel_width(800, 16) == 320   # 40% of 800
    assert panel_width(4000, 32) == 672


def test_overlaps_hand_cases():
    assert overlaps((0, 0, 10, 10), (5, 5, 10, 10))
    assert not overlaps((0, 0, 10, 10), (10, 0, 10, 10))   # touching edges
    assert not overlaps((0, 0, 10, 10), (0, 10, 10, 10))
    assert overlaps((0, 0, 10, 10), (2, 2, 1, 1))          # inside


class _CM:
    def __init__(self, miou, oa, macc):
        self.values = miou, oa, macc

    def miou(self):
        return self.values[0]

    def accuracy(self):
        return self.values[1]

    def mean_accuracy(self):
        return self.values[2]


def test_legend_rows_and_scores_against_a_hand_computed_case():
    from pcseg.metrics import ConfusionMatrix

    # classes: 0 ignored, 1 "car", 2 "road", 3 "tree" (never present)
    names = ["unlabeled", "car", "road", "tree"]
    colors = np.array([[0, 0, 0], [100, 150, 245], [255, 0, 255], [0, 175, 0]], dtype=np.uint8)
    labels = np.array([1, 1, 1, 1, 2, 2, 2, 0, 0])
    pred = np.array([1, 1, 1, 2, 2, 2, 1, 2, 1])
    # car: TP 3 (points 0-2), FP 1 (point 6), FN 1 (point 3) -> 3/5 = 60.0 %
    # road: TP 2 (points 4, 5), FP 1 (point 3), FN 1 (point 6) -> 2/4 = 50.0 %
    # points 7, 8 are unlabeled: not scored. mIoU 55.00 %, OA 5/7 = 71.43 %, mAcc (3/4 + 2/3)/2 = 70.83 %
    cm = ConfusionMatrix(4, [0], names).update(pred, labels)
    rows = legend_table(names, colors, cm.iou(), labels, pred, ignore=[0])
    assert rows == [(0, (0, 0, 0), "unlabeled", "-"), (1, (100, 150, 245), "car", "60.0"),
                    (2, (255, 0, 255), "road", "50.0")]  # "tree" is absent: no row
    assert summary_line(cm) == "mIoU 55.00%   OA 71.43%   mAcc 70.83%"
    # without a prediction: the classes of the labels, no IoU
    assert legend_table(names, colors, None, labels, None) == [
        (0, (0, 0, 0), "unlabeled", "-"), (1, (100, 150, 245), "car", "-"), (2, (255, 0, 255), "road", "-")]
    assert summary_line(None).startswith("no IoU")
    assert summary_line(_CM(0.123456, 0.5, 1.0)) == "mIoU 12.35%   OA 50.00%   mAcc 100.00%"


def _xwd(pixels: np.ndarray, bits_per_pixel: int, lsb_first: bool, pad: int = 0, ncolors: int = 0) -> bytes:
    """An XWD file of ``pixels`` (H, W, 3) as an X server writes it (TrueColor, masks ff0000/ff00/ff)."""
    h, w, _ = pixels.shape
    nbytes = bits_per_pixel // 8
    bytes_per_line = w * nbytes + pad
    name = b"root\0"
    header_size = 100 + len(name)
    header = struct.pack(">25I", header_size, 7, 2, 24, w, h, 0, 0 if lsb_first else 1, 32, 0 if lsb_first else 1, 32,
                         bits_per_pixel, bytes_per_line, 4, 0xFF0000, 0xFF00, 0xFF, 8, 256, ncolors, w, h, 0, 0, 0)
    body = bytearray()
    for row in pixels:
        for r, g, b in row:
            value = (int(r) << 16) | (int(g) << 8) | int(b)
            body += value.to_bytes(nbytes, "little" if lsb_first else "big")
        body += b"\x07" * pad
    return header + name + b"\x00" * 12 * ncolors + bytes(body)


@pytest.mark.parametrize("bits, lsb, pad, ncolors", [(24, True, 1200, 256), (32, True, 0, 0), (32, False, 4, 3),
                                                      (24, False, 0, 0)])
def test_xwd_reader_against_hand_built_dumps(bits, lsb, pad, ncolors):
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
                       [[10, 20, 30], [200, 100, 50], [255, 255, 255]]], dtype=np.uint8)
    image = parse_xwd(_xwd(pixels, bits, lsb, pad, ncolors))
    assert image.dtype == np.uint8 and image.shape == (2, 3, 3)
    assert (image == pixels).all()


def test_xwd_reader_refuses_what_it_cannot_read():
    pixels = np.zeros((2, 2, 3), dtype=np.uint8)
    good = _xwd(pixels, 32, True)
    with pytest.raises(PointCloudFormatError, match="too short"):
        parse_xwd(good[:50])
    with pytest.raises(PointCloudFormatError, match="truncated"):
        parse_xwd(good[:-3])
    with pytest.raises(PointCloudFormatError, match="16 bits per pixel"):
        parse_xwd(good[:44] + struct.pack(">I", 16) + good[48:])
