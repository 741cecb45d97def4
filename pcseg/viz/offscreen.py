"""Headless rendering with Open3D's OffscreenRenderer (Filament; software Vulkan on a CPU).

Label colours come out exactly: unlit material, post-processing (tone mapping, FXAA) and
anti-aliasing off, so every covered pixel holds the colour of one point.

Open3D aborts the whole process (Filament ``PreconditionPanic``) when an OffscreenRenderer is
destroyed while another one exists, so this module keeps at most one alive: the renderer of the
last size asked for, reused by every :class:`OffscreenScene` of that size and replaced (the old
one destroyed first) when another size is needed.
"""

from __future__ import annotations

import gc
import os
import sys
from contextlib import contextmanager

import numpy as np

from pcseg.viz.camera import Camera

_live = {"size": None, "renderer": None}  # the one OffscreenRenderer of this process (see above)


@contextmanager
def _native_stdout_silenced():
    """Filament prints its start-up lines (``FEngine ... created``) straight to file descriptor 1;
    keep them out of the user's output (a demo's table, a piped ``pcseg view``)."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _renderer(width: int, height: int):
    import open3d as o3d
    import open3d.visualization.rendering as rendering

    if _live["size"] != (width, height):
        old = _live["renderer"]
        if old is not None:
            old.scene.clear_geometry()
            _live["renderer"] = _live["size"] = None
            del old
            gc.collect()  # make sure the old renderer is gone before the next one is created
        o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
        with _native_stdout_silenced():
            renderer = rendering.OffscreenRenderer(width, height)
        renderer.scene.view.set_post_processing(False)
        renderer.scene.view.set_antialiasing(False)
        _live["renderer"], _live["size"] = renderer, (width, height)
    return _live["renderer"]


class OffscreenScene:
    """Renders points into ``width`` x ``height`` images with Open3D. ``background``: uint8 RGB.

    Creating the process's renderer costs about a second; scenes of the same size share it."""

    def __init__(self, width: int, height: int, background=(255, 255, 255)):
        import open3d as o3d
        import open3d.visualization.rendering as rendering

        self._o3d, self._rendering = o3d, rendering
        self.width, self.height = int(width), int(height)
        self.background = [c / 255.0 for c in background] + [1.0]
        _renderer(self.width, self.height)  # fail here, not at the first render, if Open3D cannot render

    def render(self, xyz: np.ndarray, colors: np.ndarray, camera: Camera, point_size: float = 2.0) -> np.ndarray:
        """uint8 (height, width, 3) image of points ``xyz`` float (N, 3) coloured ``colors``
        uint8 (N, 3), seen by ``camera``; ``point_size`` in pixels."""
        o3d, rendering = self._o3d, self._rendering
        renderer = _renderer(self.width, self.height)
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(xyz, dtype=np.float64)))
        cloud.colors = o3d.utility.Vector3dVector(np.asarray(colors, dtype=np.float64) / 255.0)
        material = rendering.MaterialRecord()
        material.shader = "defaultUnlit"
        material.point_size = float(point_size)
        scene = renderer.scene
        scene.set_background(self.background)
        scene.clear_geometry()
        scene.add_geometry("points", cloud, material)
        cam = scene.camera
        if camera.projection == "ortho":
            half_w = camera.half_height * self.width / self.height
            cam.set_projection(rendering.Camera.Projection.Ortho, -half_w, half_w, -camera.half_height,
                               camera.half_height, camera.near, camera.far)
        else:
            cam.set_projection(camera.fov_deg, self.width / self.height, camera.near, camera.far,
                               rendering.Camera.FovType.Vertical)
        cam.look_at(list(camera.center), list(camera.eye), list(camera.up))
        try:
            image = np.asarray(renderer.render_to_image())
        finally:
            scene.clear_geometry()
        return np.ascontiguousarray(image[..., :3], dtype=np.uint8)
