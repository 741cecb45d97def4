"""Read an X Window Dump (what ``xwd -root`` writes) into an RGB array.

Used to capture the interactive window as a person sees it (on a display or under Xvfb) in
tests and for the screenshot in docs/viz.md; Pillow does not read XWD. Handles the TrueColor
ZPixmap dumps X servers write (24 or 32 bits per pixel, either byte order).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from pcseg.errors import PointCloudFormatError

HEADER_FIELDS = 25  # CARD32 fields of XWDFileHeader, big-endian
ZPIXMAP, TRUE_COLOR, DIRECT_COLOR = 2, 4, 5


def parse_xwd(data: bytes, name: str = "xwd data") -> np.ndarray:
    """uint8 (H, W, 3) RGB of the dump ``data`` (bytes of an ``xwd`` file)."""
    if len(data) < 4 * HEADER_FIELDS:
        raise PointCloudFormatError(f"{name}: too short for an XWD header ({len(data)} bytes)")
    h = struct.unpack(">25I", data[:4 * HEADER_FIELDS])
    header_size, version, pixmap_format, _depth, width, height = h[:6]
    byte_order, bits_per_pixel, bytes_per_line, visual_class = h[7], h[11], h[12], h[13]
    masks, ncolors = h[14:17], h[19]
    if version != 7 or pixmap_format != ZPIXMAP or visual_class not in (TRUE_COLOR, DIRECT_COLOR):
        raise PointCloudFormatError(f"{name}: only version-7 TrueColor ZPixmap dumps are read "
                                    f"(version {version}, format {pixmap_format}, visual class {visual_class})")
    if bits_per_pixel not in (24, 32):
        raise PointCloudFormatError(f"{name}: {bits_per_pixel} bits per pixel; only 24 and 32 are read")
    nbytes = bits_per_pixel // 8
    start = header_size + 12 * ncolors  # the colour map (12 bytes an entry) follows the header
    if bytes_per_line < width * nbytes or len(data) < start + bytes_per_line * height:
        raise PointCloudFormatError(f"{name}: truncated ({len(data)} bytes for {width}x{height} pixels)")
    rows = np.frombuffer(data, np.uint8, bytes_per_line * height, start).reshape(height, bytes_per_line)
    raw = rows[:, :width * nbytes].reshape(height, width, nbytes).astype(np.uint32)
    if byte_order == 0:  # LSBFirst: least significant byte first
        raw = raw[..., ::-1]
    pixels = np.zeros((height, width), dtype=np.uint32)
    for i in range(nbytes):
        pixels = (pixels << 8) | raw[..., i]
    channels = []
    for mask in masks:
        if mask == 0:
            raise PointCloudFormatError(f"{name}: a colour mask is 0")
        shift = (mask & -mask).bit_length() - 1
        top = mask >> shift
        channels.append(((pixels & mask) >> shift) * 255 // top)
    return np.dstack(channels).astype(np.uint8)


def read_xwd(path) -> np.ndarray:
    """uint8 (H, W, 3) RGB of the XWD file at ``path``."""
    return parse_xwd(Path(path).read_bytes(), str(path))
