"""Looking at labeled clouds: headless renders (Open3D offscreen, numpy fallback) and an
interactive Open3D window.

``import pcseg.viz`` does not import open3d: only the functions that render with it do.
"""

from pcseg.viz.compose import save_png
from pcseg.viz.render import render, render_comparison

__all__ = ["render", "render_comparison", "show", "save_png"]


def show(*args, **kwargs):
    """Open the interactive viewer; see :func:`pcseg.viz.window.show`."""
    from pcseg.viz.window import show as _show

    return _show(*args, **kwargs)
