"""Headless rendering with Open3D's OffscreenRenderer (Filament; software Vulkan on a CPU).

Label colours come out exactly: unlit material, post-processing (tone mapping, FXAA) and
anti-aliasing off, so every covered pixel holds the colour of one point.
"""

from __future__ import annotations

import numpy as np

from pcseg.viz.camera import Camera


class OffscreenScene:
    """One Open3D offscreen renderer of ``width`` x ``height`` pixels, reused across renders
    (creating a renderer costs about a second). ``background``: uint8 RGB."""

    def __init__(self, width: int, height: int, background=(255, 255, 255)):
        import open3d as o3d
        import open3d.visualization.rendering as rendering

        o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
        self._o3d = o3d
        self._rendering = rendering
        self.width, self.height = int(width), int(height)
        self.renderer = rendering.OffscreenRenderer(self.width, self.height)
        bg = [c / 255.0 for c in background] + [1.0]
        scene = self.renderer.scene
        scene.set_background(bg)
        scene.view.set_post_processing(False)
        scene.view.set_antialiasing(False)
        scene.show_axes(False)

    def render(self, xyz: np.ndarray, colors: np.ndarray, camera: Camera, point_size: float = 2.0) -> np.ndarray:
        """uint8 (height, width, 3) image of points ``xyz`` float (N, 3) coloured ``colors``
        uint8 (N, 3), seen by ``camera``; ``point_size`` in pixels."""
        o3d, rendering = self._o3d, self._rendering
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(xyz, dtype=np.float64)))
        cloud.colors = o3d.utility.Vector3dVector(np.asarray(colors, dtype=np.float64) / 255.0)
        material = rendering.MaterialRecord()
        material.shader = "defaultUnlit"
        material.point_size = float(point_size)
        scene = self.renderer.scene
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
        image = np.asarray(self.renderer.render_to_image())
        return np.ascontiguousarray(image[..., :3], dtype=np.uint8)

    def close(self) -> None:
        self.renderer = None
