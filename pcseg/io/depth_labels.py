"""Per-point labels of a depth frame back onto its pixels: label images and colour overlays.

A cloud from :func:`pcseg.io.read_depth` keeps each point's pixel in ``pixels`` (u = column,
v = row), so any per-point values go back to an image of the depth image's size::

    cloud = pcseg.read_depth("depth.png", "camera.json", depth_scale=5000, color_path="rgb.png")
    labels = seg(cloud)                                        # train ids, one per point
    image = labels_to_image(cloud.pixels, seg.label_map.to_raw(labels), "depth.png")
    write_label_png("labels.png", image)                      # 0 where the depth was invalid

Pixels without a point (zero depth, or beyond ``max_depth``) hold ``fill`` (0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcseg.atomic import atomic_path
from pcseg.errors import PcsegValueError


def image_shape(shape_or_path) -> tuple[int, int]:
    """``(height, width)`` from a ``(H, W)`` pair or a depth image's path (PNG/PGM)."""
    if isinstance(shape_or_path, (str, Path)):
        from pcseg.io._common import existing_file
        from pcseg.io.depth import _read_depth_image

        return tuple(_read_depth_image(existing_file(shape_or_path, "depth image")).shape)
    shape = tuple(int(v) for v in shape_or_path)
    if len(shape) != 2 or min(shape) <= 0:
        raise PcsegValueError(f"image shape must be (height, width) with positive sizes, got {shape_or_path!r}")
    return shape


def labels_to_image(pixels, values, shape, fill: int = 0) -> np.ndarray:
    """Scatter per-point ``values`` to their pixels.

    Args:
        pixels: int (N, 2) (u, v) per point (``PointCloud.pixels`` of a depth frame).
        values: integer (N,) per-point values (e.g. raw ids ``label_map.to_raw(labels)``).
        shape: ``(height, width)`` or the depth image's path.
        fill: value of pixels that no point came from.

    Returns:
        int64 (H, W) image; pixel (v, u) holds the value of the point from it.
    """
    height, width = image_shape(shape)
    pixels, values = np.asarray(pixels), np.asarray(values)
    if pixels.ndim != 2 or pixels.shape[1] != 2 or pixels.dtype.kind not in "iu":
        raise PcsegValueError(f"pixels must be an integer (N, 2) array of (u, v), got {pixels.dtype} {pixels.shape}")
    if values.shape != (len(pixels),) or values.dtype.kind not in "iu":
        raise PcsegValueError(f"values must be integers, one per pixel ({len(pixels)}), got {values.dtype} {values.shape}")
    u, v = pixels[:, 0].astype(np.int64), pixels[:, 1].astype(np.int64)
    if len(u) and (u.min() < 0 or v.min() < 0 or u.max() >= width or v.max() >= height):
        raise PcsegValueError(f"pixels reach ({u.max()}, {v.max()}) but the image is {width}x{height}: "
                              "is it the cloud of another depth image?")
    image = np.full((height, width), fill, dtype=np.int64)
    image[v, u] = values
    return image


def write_label_png(path, image, dtype=None) -> Path:
    """Write an integer (H, W) image as a single-channel PNG, atomically.

    ``dtype``: ``np.uint8`` or ``np.uint16``; None picks uint8 when every value fits, else uint16.
    Values must lie in 0..65535. Returns the path.
    """
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 2 or image.dtype.kind not in "iu":
        raise PcsegValueError(f"write_label_png({path}): expected an integer (H, W) image, got {image.dtype} {image.shape}")
    top = int(image.max(initial=0))
    if image.size and (image.min() < 0 or top > 0xFFFF):
        raise PcsegValueError(f"write_label_png({path}): values must lie in 0..65535, got {image.min()}..{top}")
    dtype = np.dtype(dtype or (np.uint8 if top <= 0xFF else np.uint16))
    if dtype == np.uint8 and top > 0xFF:
        raise PcsegValueError(f"write_label_png({path}): value {top} does not fit uint8")
    data = image.astype(dtype)
    with atomic_path(path) as tmp:
        # PIL writes uint16 arrays as 16-bit greyscale PNGs (mode I;16)
        Image.fromarray(data).save(tmp, format="PNG")
    return Path(path)


def label_overlay(label_image, colors, base=None, alpha: float = 0.5, fill: int = 0) -> np.ndarray:
    """uint8 (H, W, 3) RGB: class colours blended over ``base`` where ``label_image != fill``.

    Args:
        label_image: int (H, W) with class indices into ``colors`` (train ids), ``fill`` elsewhere.
        colors: uint8 (C, 3) RGB per class (``label_map.colors``).
        base: uint8 (H, W, 3) colour image, (H, W) grey, or None (black).
        alpha: weight of the class colour (0..1).
    """
    label_image = np.asarray(label_image)
    colors = np.asarray(colors, dtype=np.float32)
    height, width = label_image.shape
    if base is None:
        base = np.zeros((height, width, 3), np.float32)
    else:
        base = np.asarray(base, dtype=np.float32)
        base = np.repeat(base[:, :, None], 3, axis=2) if base.ndim == 2 else base[:, :, :3]
        if base.shape[:2] != (height, width):
            raise PcsegValueError(f"overlay base is {base.shape[1]}x{base.shape[0]}, labels are {width}x{height}")
    out = base.copy()
    mask = label_image != fill
    ids = label_image[mask]
    if ids.size and (ids.min() < 0 or ids.max() >= len(colors)):
        raise PcsegValueError(f"label ids {ids.min()}..{ids.max()} outside the {len(colors)} colours")
    out[mask] = (1.0 - alpha) * base[mask] + alpha * colors[ids]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def depth_preview(depth) -> np.ndarray:
    """uint8 (H, W) grey picture of a raw depth image (near = bright, no depth = black)."""
    depth = np.asarray(depth, dtype=np.float64)
    valid = depth > 0
    out = np.zeros(depth.shape, np.uint8)
    if valid.any():
        lo, hi = np.percentile(depth[valid], [1, 99])
        scaled = 1.0 - np.clip((depth - lo) / max(hi - lo, 1e-9), 0, 1)
        out[valid] = (40 + 200 * scaled[valid]).astype(np.uint8)
    return out


def write_rgb_png(path, image) -> Path:
    """Write a uint8 (H, W, 3) image as an RGB PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
    return Path(path)
