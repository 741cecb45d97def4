"""Depth images (16-bit PNG or PGM) -> camera-frame point clouds by pinhole back-projection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pcseg.errors import PcsegValueError, PointCloudFormatError
from pcseg.io._common import existing_file
from pcseg.io.pointcloud import PointCloud


def read_depth(depth_path, intrinsics, depth_scale: float = 1000.0, color_path=None,
               max_depth: float | None = None) -> PointCloud:
    """Back-project a 16-bit depth image into a point cloud in the camera frame.

    The frame is the one Open3D and OpenCV use: x right, y down, z forward, in metres. Pixel
    (u, v) (column, row) with raw depth d becomes ``z = d / depth_scale``,
    ``x = (u - cx) * z / fx``, ``y = (v - cy) * z / fy``.

    Args:
        depth_path: 16-bit single-channel PNG, or PGM (P5/P2, maxval > 255 means 16-bit).
        intrinsics: ``(fx, fy, cx, cy)`` in pixels; a dict with those keys; a 3x3 camera matrix;
            or the path of an Open3D camera JSON (``width``, ``height``, column-major
            ``intrinsic_matrix``), whose width/height must match the image.
        depth_scale: raw units per metre (1000 for most sensors, 5000 for TUM RGB-D).
        color_path: optional 8-bit colour image of the same size; gives ``rgb`` in [0, 1].
        max_depth: drop points farther than this many metres (zero depth is always dropped).

    Returns:
        PointCloud with xyz float32 (N, 3), ``pixels`` int32 (N, 2) holding each point's (u, v),
        and ``rgb`` when a colour image is given. Points are in row-major pixel order.
    """
    depth_path = existing_file(depth_path, "depth image")
    depth = _read_depth_image(depth_path)
    height, width = depth.shape
    fx, fy, cx, cy, size = _parse_intrinsics(intrinsics)
    if size is not None and size != (width, height):
        raise PointCloudFormatError(
            f"{depth_path}: depth image is {width}x{height} but the intrinsics are for {size[0]}x{size[1]}"
        )
    if not (fx > 0 and fy > 0):
        raise PcsegValueError(f"intrinsics: focal lengths must be positive, got fx={fx}, fy={fy}")
    if not depth_scale or depth_scale <= 0:
        raise PcsegValueError(f"depth_scale must be positive, got {depth_scale}")

    z_all = depth.astype(np.float64) / float(depth_scale)
    valid = depth > 0
    if max_depth is not None:
        valid &= z_all <= float(max_depth)
    v, u = np.nonzero(valid)  # row-major order
    z = z_all[v, u]
    x = (u - cx) * z / fx
    y = (v - cy) * z / fy
    xyz = np.stack([x, y, z], axis=1)

    rgb = None
    if color_path is not None:
        color = _read_color_image(existing_file(color_path, "colour image"))
        if color.shape[:2] != depth.shape:
            raise PointCloudFormatError(
                f"{color_path}: colour image is {color.shape[1]}x{color.shape[0]} "
                f"but the depth image {depth_path} is {width}x{height}"
            )
        rgb = color[v, u].astype(np.float32) / 255.0
    pixels = np.stack([u, v], axis=1).astype(np.int32)
    cloud = PointCloud(xyz=xyz, rgb=rgb, pixels=pixels, source=str(depth_path))
    if len(cloud) == 0:
        raise PointCloudFormatError(f"{depth_path}: no pixel has a valid depth (all zero or beyond max_depth)")
    return cloud


def _parse_intrinsics(intrinsics):
    """-> (fx, fy, cx, cy, (width, height) or None)."""
    if isinstance(intrinsics, (str, Path)):
        path = existing_file(intrinsics, "camera intrinsics JSON")
        try:
            spec = json.loads(Path(path).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PointCloudFormatError(f"{path}: not valid JSON ({exc})") from None
        try:
            m = np.asarray(spec["intrinsic_matrix"], dtype=np.float64).reshape(3, 3).T  # stored column-major
            size = (int(spec["width"]), int(spec["height"]))
        except (KeyError, ValueError, TypeError):
            raise PointCloudFormatError(
                f"{path}: expected Open3D camera JSON with width, height and 9-value intrinsic_matrix"
            ) from None
        return m[0, 0], m[1, 1], m[0, 2], m[1, 2], size
    if isinstance(intrinsics, dict):
        try:
            fx, fy, cx, cy = (float(intrinsics[k]) for k in ("fx", "fy", "cx", "cy"))
        except KeyError:
            raise PcsegValueError(f"intrinsics dict needs keys fx, fy, cx, cy; got {sorted(intrinsics)}") from None
        size = (int(intrinsics["width"]), int(intrinsics["height"])) if "width" in intrinsics else None
        return fx, fy, cx, cy, size
    values = np.asarray(intrinsics, dtype=np.float64)
    if values.shape == (3, 3):
        return values[0, 0], values[1, 1], values[0, 2], values[1, 2], None
    if values.shape == (4,):
        return (*values.tolist(), None)
    raise PcsegValueError(
        f"intrinsics must be (fx, fy, cx, cy), a dict, a 3x3 matrix or a camera JSON path; got shape {values.shape}"
    )


def _read_depth_image(path: Path) -> np.ndarray:
    """uint16 (H, W) raw depth."""
    if path.suffix.lower() in (".pgm", ".pnm"):
        image = _read_pgm(path)
    else:
        image = _pil_array(path)
    if image.ndim != 2:
        raise PointCloudFormatError(
            f"{path}: depth image must be single-channel, got shape {image.shape} (is it a colour image?)"
        )
    if image.dtype == np.uint16:
        return image
    if image.dtype in (np.int32, np.uint32) and image.size and image.min() >= 0 and image.max() <= 65535:
        return image.astype(np.uint16)  # PIL hands some 16-bit PNGs back as 32-bit ints
    raise PointCloudFormatError(f"{path}: depth image must be 16-bit (uint16), got {image.dtype}")


def _pil_array(path: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow comes with matplotlib
        raise PcsegValueError("reading PNG depth images needs Pillow (pip install pillow)") from None
    try:
        with Image.open(path) as img:
            if img.mode in ("I;16", "I;16B", "I;16L"):
                return np.array(img, dtype=np.uint16)
            return np.array(img)
    except OSError as exc:
        raise PointCloudFormatError(f"{path}: not a readable image ({exc})") from None


def _read_color_image(path: Path) -> np.ndarray:
    image = _pil_array(path)
    if image.dtype != np.uint8:
        raise PointCloudFormatError(f"{path}: colour image must be 8-bit, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise PointCloudFormatError(f"{path}: colour image must be RGB or RGBA, got shape {image.shape}")
    return image[:, :, :3]


def _read_pgm(path: Path) -> np.ndarray:
    """Netpbm graymap: binary P5 (16-bit samples are big-endian) or ASCII P2."""
    data = path.read_bytes()
    tokens, pos = [], 0
    while len(tokens) < 4:
        while pos < len(data) and chr(data[pos]).isspace():
            pos += 1
        if pos < len(data) and data[pos : pos + 1] == b"#":
            while pos < len(data) and data[pos : pos + 1] not in (b"\n", b"\r"):
                pos += 1
            continue
        start = pos
        while pos < len(data) and not chr(data[pos]).isspace():
            pos += 1
        if start == pos:
            raise PointCloudFormatError(f"{path}: truncated PGM header")
        tokens.append(data[start:pos].decode("ascii", "replace"))
    magic = tokens[0]
    try:
        width, height, maxval = (int(t) for t in tokens[1:])
    except ValueError:
        raise PointCloudFormatError(f"{path}: malformed PGM header {tokens}") from None
    if magic not in ("P5", "P2"):
        raise PointCloudFormatError(f"{path}: not a graymap PGM (magic {magic!r}, want P5 or P2)")
    dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
    if magic == "P5":
        body = data[pos + 1 :]
        need = width * height * dtype.itemsize
        if len(body) < need:
            raise PointCloudFormatError(f"{path}: PGM holds {len(body)} bytes of pixels, {need} expected")
        image = np.frombuffer(body[:need], dtype=dtype).reshape(height, width)
    else:
        values = np.array(data[pos:].split(), dtype=np.int64)
        if values.size != width * height:
            raise PointCloudFormatError(f"{path}: PGM holds {values.size} pixels, {width * height} expected")
        image = values.reshape(height, width).astype(dtype)
    return image.astype(np.uint16) if maxval > 255 else image.astype(np.uint8)
