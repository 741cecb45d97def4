"""The interactive viewer: an Open3D GUI window over one scan or a sequence.

The 3D view fills the left of the window; a panel on the right shows, from the start, the scan,
its mIoU / OA / mAcc and a legend with one row per class present (check box to hide or show
the class, its colour, name and IoU). Buttons switch the colour mode and step through scans; a
slider sets the point size. The window opens at a size that fits the screen
(:func:`pcseg.viz.window_layout.window_size`) and the panel scrolls rather than squeezing its
rows over each other when the window is made small.
"""

from __future__ import annotations

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.viz import colors as C
from pcseg.viz.render import confusion, default_mode, error_entries, point_colors, scene_data
from pcseg.viz.scans import Scan, load_scene
from pcseg.viz.window_layout import legend_table, screen_size, split_frames, summary_line, window_size

MODE_TITLES = {"gt": "ground truth", "pred": "prediction", "errors": "errors", "intensity": "intensity",
               "height": "height", "rgb": "rgb"}
SCALAR_NOTES = {"intensity": "Intensity, viridis colours:\ndark low, yellow high (1st to 99th percentile)",
                "height": "Height (z), turbo colours:\nblue low, red high (1st to 99th percentile)",
                "rgb": "The points' own colours"}


class ViewerWindow:
    """Builds and drives one window (``gui.Application.instance`` must be initialised; the caller
    runs the event loop).

    ``scans``: list of :class:`pcseg.viz.scans.Scan` (loaded when shown) or of ready
    ``SceneData``; ``label_map``: :class:`pcseg.io.LabelMap` or None; ``width``/``height``:
    window size in pixels, None to fit the screen.
    """

    def __init__(self, scans, label_map=None, start: int = 0, mode: str | None = None, point_size: float = 2.0,
                 background=(255, 255, 255), width: int | None = None, height: int | None = None,
                 title: str = "pcseg view"):
        import open3d as o3d

        if not scans:
            raise PcsegValueError("nothing to show: no scans")
        gui, rendering = o3d.visualization.gui, o3d.visualization.rendering
        self._o3d, self._gui = o3d, gui
        self.scans, self.label_map = list(scans), label_map
        self.index = int(start) % len(self.scans)
        self.requested_mode = mode
        self.point_size = float(point_size)
        self.base_title = title
        self.geometry_names: list[str] = []
        if width is None or height is None:
            fit = window_size(screen_size())
            width, height = width or fit[0], height or fit[1]
        self.window = window = gui.Application.instance.create_window(title, int(width), int(height))
        em = window.theme.font_size
        self.em = em

        self.view = gui.SceneWidget()
        self.view.scene = rendering.Open3DScene(window.renderer)
        self.view.scene.set_background(np.r_[np.asarray(background, dtype=np.float64) / 255.0, 1.0])
        self.view.scene.show_axes(False)
        # label views must show the label colours: no tone mapping, no anti-aliasing blends
        self.view.scene.view.set_post_processing(False)
        self.view.scene.view.set_antialiasing(False)

        gap, pad = int(round(0.3 * em)), int(round(0.6 * em))
        self.panel = gui.ScrollableVert(gap, gui.Margins(pad, pad, pad, pad))
        self.scan_label, self.score_label = gui.Label(""), gui.Label("")
        self.panel.add_child(self.scan_label)
        self.panel.add_child(self.score_label)

        self.mode_buttons = {}
        modes = gui.VGrid(3, gap)
        for name in C.MODES:
            button = self._button(MODE_TITLES[name])
            button.toggleable = True
            button.set_on_clicked(lambda m=name: self.set_mode(m))
            self.mode_buttons[name] = button
            modes.add_child(button)
        self.panel.add_child(modes)

        nav = gui.Horiz(gap)
        self.prev_button, self.next_button = self._button("Previous"), self._button("Next")
        self.prev_button.set_on_clicked(lambda: self.step(-1))
        self.next_button.set_on_clicked(lambda: self.step(+1))
        for button in (self.prev_button, self.next_button):
            button.enabled = len(self.scans) > 1
            nav.add_child(button)
        table = self._button("Print IoU table")
        table.tooltip = "print the per-class IoU table of this scan to the terminal"
        table.set_on_clicked(lambda: print(self.table_text(), flush=True))
        nav.add_child(table)
        self.panel.add_child(nav)

        size_row = gui.VGrid(2, gap)
        size_row.add_child(gui.Label("Point size"))
        slider = gui.Slider(gui.Slider.INT)
        slider.set_limits(1, 10)
        slider.int_value = max(1, int(round(point_size)))
        slider.set_on_value_changed(self._set_point_size)
        size_row.add_child(slider)
        self.panel.add_child(size_row)

        self.legend_title = gui.Label("")
        self.panel.add_child(self.legend_title)
        self.legend = gui.WidgetProxy()  # swapped for a new table on every mode or scan change
        self.panel.add_child(self.legend)
        self.legend_widgets: list[tuple[str, object]] = []
        self._swatch_pad, self._swatch_pad_measured = 0.0, False

        window.add_child(self.view)
        window.add_child(self.panel)
        window.set_on_layout(self._on_layout)
        self.load(self.index, reset_camera=True)

    def _button(self, text: str):
        button = self._gui.Button(text)
        button.horizontal_padding_em, button.vertical_padding_em = 0.5, 0.1  # compact: the legend needs the room
        return button

    def _swatch(self, rgb):
        """A small square of exactly ``rgb`` with a dark frame (pale colours stay visible)."""
        swatch = self._gui.Button("")
        swatch.horizontal_padding_em, swatch.vertical_padding_em = 0.6, self._swatch_pad
        swatch.background_color = self._gui.Color(*(c / 255.0 for c in rgb))
        return swatch

    def _on_layout(self, context) -> None:
        r = self.window.content_rect
        frames = split_frames((r.x, r.y, r.width, r.height), self.em)
        self.view.frame = self._gui.Rect(*frames["scene"])
        self.panel.frame = self._gui.Rect(*frames["panel"])
        if self._swatch_pad_measured:
            return
        # Open3D's VGrid stacks each column by its own cells' heights, so a legend row stays
        # level only when the swatch (a button) is exactly as tall as the label beside it
        self._swatch_pad_measured = True
        free = self._gui.Widget.Constraints()
        label_h = self._gui.Label("car").calc_preferred_size(context, free).height
        probe = self._gui.Button("")
        probe.vertical_padding_em = 0.0
        button_h = probe.calc_preferred_size(context, free).height
        self._swatch_pad = max(0.0, (label_h - button_h) / (2.0 * self.em))
        self._update_panel()

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
            self.data, self.north_up = item, False
            self.name = "cloud" if len(self.scans) == 1 else f"cloud {self.index + 1}"
        self.cm = confusion(self.data)
        self.mode = self.requested_mode if self._mode_ok(self.requested_mode) else default_mode(self.data)
        self._rebuild()
        if reset_camera:
            from pcseg.viz.camera import preset

            cam = preset(self.data.xyz, "perspective", 1.6, north_up=self.north_up)  # as the PNG renders
            self.view.setup_camera(cam.fov_deg, self.view.scene.bounding_box, np.asarray(cam.center, np.float32))
            self.view.look_at(np.asarray(cam.center, np.float32), np.asarray(cam.eye, np.float32),
                              np.asarray(cam.up, np.float32))

    def step(self, delta: int) -> None:
        """Next (+1) or previous (-1) scan, keeping the colour mode when the scan has it."""
        self.load(self.index + delta)

    def set_mode(self, mode: str) -> None:
        """Switch the colour mode (``gt``, ``pred``, ``errors``, ``intensity``, ``height``, ``rgb``);
        a mode the scan cannot show is refused with a message box."""
        if not self._mode_ok(mode):
            self.window.show_message_box("pcseg view", f"This scan has no data for colour mode '{mode}'.")
            self._update_panel()  # the toggle button pressed stays off
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

    def _set_point_size(self, value) -> None:
        self.point_size = float(value)
        material = self._material()
        for name in self.geometry_names:
            self.view.scene.modify_geometry_material(name, material)
        self.window.post_redraw()

    # ------------------------------------------------------------------ drawing
    def _groups(self) -> dict:
        """{legend key: (geometry name, point indices)} for the current mode: one group per class
        shown (key: train id) in label modes, so each can be hidden; per error kind (key: its
        name) in errors mode; one group otherwise."""
        data, mode = self.data, self.mode
        if mode in ("gt", "pred"):
            ids = data.labels if mode == "gt" else data.pred
            groups = {}
            for c in np.unique(ids):
                # one geometry per class (names must be unique: the train id is part of it)
                groups[int(c)] = (f"{data.names[c]} [{c}]", np.flatnonzero(ids == c))
            return groups
        if mode == "errors":
            colors = point_colors(data, mode)
            groups = {}
            for rgb, text in error_entries():
                idx = np.flatnonzero((colors == np.asarray(rgb)).all(axis=1))
                if idx.size:
                    groups[text] = (text, idx)
            return groups
        return {mode: (mode, np.arange(len(data.xyz)))}

    def _material(self):
        material = self._o3d.visualization.rendering.MaterialRecord()
        material.shader = "defaultUnlit"  # label colours shown as they are, no lighting
        material.point_size = self.point_size * self.window.scaling
        return material

    def _rebuild(self) -> None:
        o3d, scene = self._o3d, self.view.scene
        for name in self.geometry_names:
            scene.remove_geometry(name)
        self.geometry_names = []
        self.groups = self._groups()
        colors = point_colors(self.data, self.mode).astype(np.float64) / 255.0
        xyz = self.data.xyz.astype(np.float64)
        material = self._material()
        for name, idx in self.groups.values():
            cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz[idx]))
            cloud.colors = o3d.utility.Vector3dVector(colors[idx])
            scene.add_geometry(name, cloud, material)
            self.geometry_names.append(name)
        miou = f"mIoU {100 * self.cm.miou():.2f}%" if self.cm is not None else "no prediction to score"
        self.window.title = (f"{self.base_title} - {self.name} ({self.index + 1}/{len(self.scans)}) - "
                             f"{self.mode} - {miou}")
        self._update_panel()
        self.window.post_redraw()

    def _update_panel(self) -> None:
        gui = self._gui
        where = f"   scan {self.index + 1} of {len(self.scans)}" if len(self.scans) > 1 else ""
        self.scan_label.text = f"{self.name}{where}   {len(self.data.xyz):,} points"
        self.score_label.text = summary_line(self.cm)
        for name, button in self.mode_buttons.items():
            button.is_on = name == self.mode
            button.enabled = self._mode_ok(name)
        self.legend_title.text = self.legend_heading()
        table = gui.VGrid(4, int(round(0.25 * self.em)), gui.Margins(0, 0, 0, 0))
        self.legend_widgets = []
        if self.mode in ("gt", "pred", "errors"):
            last = "points" if self.mode == "errors" else "IoU %" if self.cm is not None else ""
            for text in ("", "", "" if self.mode == "errors" else "class", last):
                table.add_child(gui.Label(text))
        for key, rgb, text, value in self._legend_items():
            check, swatch = gui.Checkbox(""), self._swatch(rgb)
            name = self.groups[key][0] if key in self.groups else None
            check.checked = check.enabled = name is not None  # a class this mode shows no point of: no box
            if name is not None:
                check.set_on_checked(lambda on, n=name: self._show_group(n, on))
                swatch.set_on_clicked(lambda c=check, n=name: self._toggle(c, n))
            cells = (check, swatch, gui.Label(text), gui.Label(value))
            for cell in cells:
                table.add_child(cell)
            self.legend_widgets.append((text, cells))
        self.legend.set_widget(table)
        self.window.set_needs_layout()

    def _toggle(self, check, name: str) -> None:
        check.checked = not check.checked
        self._show_group(name, check.checked)

    def _show_group(self, name: str, visible: bool) -> None:
        self.view.scene.show_geometry(name, bool(visible))
        self.window.post_redraw()

    def legend_heading(self) -> str:
        """The line above the legend table, naming what the colours mean."""
        if self.mode in ("gt", "pred"):
            return f"Classes, {MODE_TITLES[self.mode]} colours (untick to hide)"
        if self.mode == "errors":
            return "Prediction against ground truth"
        return SCALAR_NOTES[self.mode]

    def legend_rows(self) -> list:
        """[(rgb, text, value)] of the legend table: in label modes every class present in the
        ground truth or the prediction (those the mIoU averages, and the ignored ones) with its
        colour, name and IoU in percent ("-" when there is none); in errors mode each error kind
        with its colour, name and point count; nothing for intensity, height and rgb."""
        return [row[1:] for row in self._legend_items()]

    def _legend_items(self) -> list:
        if self.mode in ("gt", "pred"):
            iou = self.cm.iou() if self.cm is not None else None
            return legend_table(self.data.names, self.data.table, iou, self.data.labels, self.data.pred,
                                self.data.ignore_index)
        if self.mode == "errors":
            return [(text, rgb, text, f"{len(self.groups[text][1]):,}") for rgb, text in error_entries()
                    if text in self.groups]
        return []

    def panel_frames(self) -> list:
        """[(text, (x, y, w, h))] of every visible leaf widget in the panel after layout (labels
        by their text, other widgets by their class name): what a test checks for overlaps."""
        out = []

        def walk(widget):
            children = widget.get_children()
            if not children:
                if widget.visible:
                    f = widget.frame
                    out.append((getattr(widget, "text", type(widget).__name__), (f.x, f.y, f.width, f.height)))
            for child in children:
                walk(child)

        walk(self.panel)
        return out

    def table_text(self) -> str:
        """The per-class IoU table of the current scan (or a note when it cannot be scored)."""
        if self.cm is None:
            return f"{self.name}: ground truth and prediction are both needed for IoU"
        return f"{self.name}\n{self.cm.table()}"

    def close(self) -> None:
        self.window.close()


def show(points=None, labels=None, pred=None, *, label_map=None, scans=None, start: int = 0,
         mode: str | None = None, point_size: float = 2.0, background=(255, 255, 255),
         width: int | None = None, height: int | None = None, title: str = "pcseg view") -> None:
    """Open the interactive viewer and block until its window is closed.

    Give one cloud (``points`` a PointCloud or float (N, 3+) array; ``labels``/``pred`` integer
    (N,) train ids) or ``scans`` (a list from :func:`pcseg.viz.scans.find_scans`) to step
    through with the Next/Previous buttons. ``width``/``height`` None: fit the screen. Needs a
    display (or Xvfb).
    """
    import open3d as o3d

    if scans is None:
        if points is None:
            raise PcsegValueError("show needs points or scans")
        scans = [scene_data(points, labels, pred, label_map)]
    app = o3d.visualization.gui.Application.instance
    app.initialize()
    ViewerWindow(scans, label_map, start, mode, point_size, background, width, height, title)
    app.run()
