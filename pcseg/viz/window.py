"""The interactive viewer: an Open3D O3DVisualizer window over one scan or a sequence.

Each class is its own geometry named "<class>  IoU xx.x" in the window's geometry list, so the
list is the legend (with per-class IoU) and its check boxes hide or show classes. The window
title carries the scan name, the colour mode and mIoU. Settings panel actions switch colour
mode and step through scans; Open3D's own settings give point size and background.
"""

from __future__ import annotations

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.viz import colors as C
from pcseg.viz.render import class_entries, confusion, default_mode, error_entries, point_colors, scene_data
from pcseg.viz.scans import Scan, load_scene


class ViewerWindow:
    """Builds and drives one O3DVisualizer window (the app must be initialised).

    ``scans``: list of :class:`pcseg.viz.scans.Scan` (loaded when shown) or of ready
    ``SceneData``; ``label_map``: :class:`pcseg.io.LabelMap` or None.
    """

    def __init__(self, scans, label_map=None, start: int = 0, mode: str | None = None, point_size: float = 2.0,
                 background=(255, 255, 255), width: int = 1280, height: int = 800, title: str = "pcseg view"):
        import open3d as o3d

        if not scans:
            raise PcsegValueError("nothing to show: no scans")
        self._o3d = o3d
        self.scans, self.label_map = list(scans), label_map
        self.index = int(start) % len(self.scans)
        self.requested_mode = mode
        self.point_size = float(point_size)
        self.base_title = title
        self.geometry_names: list[str] = []
        self.vis = o3d.visualization.O3DVisualizer(title, int(width), int(height))
        self.vis.show_settings = True
        self.vis.point_size = max(1, int(round(point_size)))
        self.vis.set_background(np.r_[np.asarray(background, dtype=np.float64) / 255.0, 1.0], None)
        self.vis.show_skybox(False)
        self.vis.show_axes = False
        # label views must show the label colours: no tone mapping, no anti-aliasing blends
        self.vis.scene.view.set_post_processing(False)
        self.vis.scene.view.set_antialiasing(False)
        for mode_name in C.MODES:
            self.vis.add_action(f"Colour: {mode_name}", lambda _vis, m=mode_name: self.set_mode(m))
        self.vis.add_action("Previous scan", lambda _vis: self.step(-1))
        self.vis.add_action("Next scan", lambda _vis: self.step(+1))
        self.vis.add_action("Legend and IoU", lambda _vis: self.show_legend())
        self.vis.add_action("Print IoU table", lambda _vis: print(self.table_text()))
        self.load(self.index, reset_camera=True)

    # ------------------------------------------------------------------ state
    def load(self, index: int, reset_camera: bool = False) -> None:
        """Show scan ``index`` (wraps around)."""
        self.index = index % len(self.scans)
        item = self.scans[self.index]
        if isinstance(item, Scan):
            from pcseg.viz.camera import is_map_tile

            self.data, cloud = load_scene(item, self.label_map)
            self.name, self.north_up = item.name, is_map_tile(cloud)
        else:
            self.data, self.name, self.north_up = item, f"scan {self.index}", False
        self.cm = confusion(self.data)
        self.mode = self.requested_mode if self._mode_ok(self.requested_mode) else default_mode(self.data)
        self._rebuild()
        if reset_camera:
            from pcseg.viz.camera import preset

            cam = preset(self.data.xyz, "perspective", 1.6, north_up=self.north_up)  # as the PNG renders
            self.vis.setup_camera(cam.fov_deg, list(cam.center), list(cam.eye), list(cam.up))

    def step(self, delta: int) -> None:
        """Next (+1) or previous (-1) scan, keeping the colour mode when the scan has it."""
        self.load(self.index + delta)

    def set_mode(self, mode: str) -> None:
        """Switch the colour mode (``gt``, ``pred``, ``errors``, ``intensity``, ``height``, ``rgb``);
        a mode the scan cannot show is refused with a message box."""
        if not self._mode_ok(mode):
            self.vis.show_message_box("pcseg view", f"This scan has no data for colour mode '{mode}'.")
            return
        self.requested_mode = self.mode = mode
        self._rebuild()

    def _mode_ok(self, mode) -> bool:
        if mode is None:
            return False
        try:
            point_colors(self.data, mode)[:0]
            return True
        except PcsegValueError:
            return False

    # ------------------------------------------------------------------ drawing
    def _groups(self):
        """[(geometry name, point indices)] for the current mode: one group per class in label
        modes (the legend), per error kind in errors mode, one group otherwise."""
        data, mode = self.data, self.mode
        if mode in ("gt", "pred"):
            ids = data.labels if mode == "gt" else data.pred
            groups, used = [], set()
            for c, (_, text) in zip(self._present_classes(), class_entries(data, self.cm)):
                idx = np.flatnonzero(ids == c)
                name = text if text not in used else f"{text} [{c}]"  # geometry names must be unique
                used.add(name)
                if idx.size:
                    groups.append((name, idx))
            return groups
        if mode == "errors":
            colors = point_colors(data, mode)
            groups = []
            for rgb, text in error_entries():
                idx = np.flatnonzero((colors == np.asarray(rgb)).all(axis=1))
                if idx.size:
                    groups.append((f"{text} ({idx.size:,} points)", idx))
            return groups
        return [(mode, np.arange(len(data.xyz)))]

    def _present_classes(self):
        present = np.zeros(len(self.data.table), dtype=bool)
        for v in (self.data.labels, self.data.pred):
            if v is not None:
                present[np.unique(v)] = True
        return list(np.flatnonzero(present))

    def _rebuild(self) -> None:
        o3d = self._o3d
        for name in self.geometry_names:
            self.vis.remove_geometry(name)
        self.geometry_names = []
        colors = point_colors(self.data, self.mode).astype(np.float64) / 255.0
        xyz = self.data.xyz.astype(np.float64)
        material = o3d.visualization.rendering.MaterialRecord()
        material.shader = "defaultUnlit"  # label colours shown as they are, no lighting
        material.point_size = self.point_size
        for name, idx in self._groups():
            cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz[idx]))
            cloud.colors = o3d.utility.Vector3dVector(colors[idx])
            self.vis.add_geometry(name, cloud, material)
            self.geometry_names.append(name)
        miou = f"mIoU {100 * self.cm.miou():.2f}%" if self.cm is not None else "no prediction to score"
        self.vis.title = f"{self.base_title} - {self.name} ({self.index + 1}/{len(self.scans)}) - {self.mode} - {miou}"
        self.vis.post_redraw()

    def legend_rows(self) -> list:
        """[(rgb, text)] of the current mode: class colours with IoU, or the error colours."""
        if self.mode in ("gt", "pred"):
            return class_entries(self.data, self.cm)
        if self.mode == "errors":
            return error_entries()
        return []

    def show_legend(self) -> None:
        """A dialog with a colour swatch per row of :meth:`legend_rows`, and mIoU."""
        gui = self._o3d.visualization.gui
        em = self.vis.scaling * 10  # font-relative spacing, as Open3D's own panels use
        dialog = gui.Dialog("Legend")
        column = gui.Vert(int(0.25 * em), gui.Margins(int(em), int(em), int(em), int(em)))
        header = f"{self.name}: {self.mode}"
        if self.cm is not None:
            header += f"   mIoU {100 * self.cm.miou():.2f}%   OA {100 * self.cm.accuracy():.2f}%"
        column.add_child(gui.Label(header))
        for rgb, text in self.legend_rows():
            row = gui.Horiz(int(0.5 * em))
            swatch = gui.Label("#####")  # ASCII: Open3D's GUI font has no block glyphs
            swatch.text_color = gui.Color(*(c / 255.0 for c in rgb))
            row.add_child(swatch)
            row.add_child(gui.Label(text))
            column.add_child(row)
        ok = gui.Button("Close")
        ok.set_on_clicked(self.vis.close_dialog)
        column.add_child(ok)
        dialog.add_child(column)
        self.vis.show_dialog(dialog)

    def table_text(self) -> str:
        """The per-class IoU table of the current scan (or a note when it cannot be scored)."""
        if self.cm is None:
            return f"{self.name}: ground truth and prediction are both needed for IoU"
        return f"{self.name}\n{self.cm.table()}"


def show(points=None, labels=None, pred=None, *, label_map=None, scans=None, start: int = 0,
         mode: str | None = None, point_size: float = 2.0, background=(255, 255, 255),
         width: int = 1280, height: int = 800, title: str = "pcseg view") -> None:
    """Open the interactive viewer and block until its window is closed.

    Give one cloud (``points`` a PointCloud or float (N, 3+) array; ``labels``/``pred`` integer
    (N,) train ids) or ``scans`` (a list from :func:`pcseg.viz.scans.find_scans`) to step
    through with the Next/Previous actions. Needs a display (or Xvfb).
    """
    import open3d as o3d

    if scans is None:
        if points is None:
            raise PcsegValueError("show needs points or scans")
        scans = [scene_data(points, labels, pred, label_map)]
    app = o3d.visualization.gui.Application.instance
    app.initialize()
    window = ViewerWindow(scans, label_map, start, mode, point_size, background, width, height, title)
    app.add_window(window.vis)
    app.run()
