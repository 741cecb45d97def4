"""Looking at labeled clouds: headless renders (Open3D offscreen, numpy fallback), an
interactive Open3D window, a self-contained interactive HTML page (:mod:`pcseg.viz.html`) and
the same page inline in Jupyter (:func:`show`).

``import pcseg.viz`` does not import open3d: only the functions that render with it do.
"""

from pcseg.viz.compose import save_png
from pcseg.viz.render import render, render_comparison

__all__ = ["render", "render_comparison", "show", "save_png", "write_html"]


def write_html(path, points, labels=None, pred=None, **kwargs):
    """Write one self-contained interactive page; see :func:`pcseg.viz.html.write_html`."""
    from pcseg.viz.html import write_html as _write_html

    return _write_html(path, points, labels, pred, **kwargs)


def show(points=None, labels=None, pred=None, *, label_map=None, inline: bool | None = None, **kwargs):
    """Show a labelled cloud: inline in Jupyter, else in the Open3D window.

    points: PointCloud or float (N, 3+) array; labels / pred: int (N,) train ids; label_map:
    names, colours, ignored ids. ``inline`` (default: whether this runs in a Jupyter kernel)
    displays the interactive page of :mod:`pcseg.viz.html` in the notebook (ground truth /
    prediction / errors buttons, legend with IoU, hover with class and coordinates) and returns
    None; without IPython the view object is returned for the caller to display. Otherwise
    the arguments go to :func:`pcseg.viz.window.show` (needs a display).
    """
    if inline is None:
        inline = _in_notebook()
    if inline:
        from pcseg.viz.html import NotebookView, html_page, page_data

        view = NotebookView(html_page(page_data(points, labels, pred, label_map=label_map,
                                                title=kwargs.pop("title", "pcseg view"))))
        try:
            from IPython.display import display
        except ImportError:
            return view
        display(view)
        return None
    from pcseg.viz.window import show as _show

    return _show(points, labels, pred, label_map=label_map, **kwargs)


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython already imported and running a kernel shell)."""
    import sys

    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython() if hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
