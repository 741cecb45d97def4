"""A pure numpy point renderer: the fallback when Open3D cannot render (no open3d, no Vulkan).

Each point is a ``point_size`` x ``point_size`` pixel square; the nearest point wins each pixel
(a z-buffer by sorting). Same cameras as the Open3D path, so both frame a cloud alike.
"""

from __future__ import annotations

import numpy as np

from pcseg.viz.camera import Camera, project


def render_splat(xyz: np.ndarray, colors: np.ndarray, camera: Camera, width: int, height: int,
                 point_size: float = 2.0, background=(255, 255, 255)) -> np.ndarray:
    """uint8 (height, width, 3) image of ``xyz`` float (N, 3) coloured ``colors`` uint8 (N, 3)."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = np.asarray(background, dtype=np.uint8)
    u, v, depth, visible = project(xyz, camera, width, height)
    idx = np.flatnonzero(visible)
    if idx.size == 0:
        return image
    ui = np.floor(u[idx]).astype(np.int64)
    vi = np.floor(v[idx]).astype(np.int64)
    size = max(1, int(round(point_size)))
    shifts = np.arange(size) - (size - 1) // 2
    du, dv = (a.reshape(-1) for a in np.meshgrid(shifts, shifts))
    pu = (ui[:, None] + du[None, :]).reshape(-1)
    pv = (vi[:, None] + dv[None, :]).reshape(-1)
    point = np.repeat(idx, du.size)
    inside = (pu >= 0) & (pu < width) & (pv >= 0) & (pv < height)
    pixel = pv[inside] * width + pu[inside]
    point = point[inside]
    # nearest point per pixel: sort by (pixel, depth) and keep each pixel's first entry
    order = np.lexsort((depth[point], pixel))
    pixel, point = pixel[order], point[order]
    first = np.ones(len(pixel), dtype=bool)
    first[1:] = pixel[1:] != pixel[:-1]
    flat = image.reshape(-1, 3)
    flat[pixel[first]] = np.asarray(colors, dtype=np.uint8)[point[first]]
    return image
