"""Instance views: one colour per instance, stuff classes greyed (``pcseg view --instances``)."""

from __future__ import annotations

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.viz.colors import IGNORED_PALE, distinct_colors

STUFF_GREY = (185, 185, 185)  # points of stuff classes
UNGROUPED_GREY = (110, 110, 110)  # thing points without an instance id (0)


def instance_colors(semantic: np.ndarray, instance: np.ndarray, things, ignore_index=()) -> np.ndarray:
    """uint8 (N, 3): a distinct colour per (class, instance id) of the thing classes, grey for
    stuff, dark grey for thing points with instance 0, pale for ignored classes.

    semantic: int (N,) train ids; instance: int (N,) ids; things: train ids with instances.
    Colours depend only on the (class, id) pairs present, in sorted order: the same ids give the
    same colours in every view.
    """
    semantic = np.asarray(semantic).reshape(-1)
    instance = np.asarray(instance).reshape(-1)
    if semantic.shape != instance.shape:
        raise PcsegValueError(f"semantic has {semantic.size} values but instance has {instance.size}")
    if semantic.dtype.kind not in "iu" or instance.dtype.kind not in "iu":
        raise PcsegValueError("semantic and instance must be integer ids")
    out = np.empty((len(semantic), 3), dtype=np.uint8)
    out[:] = STUFF_GREY
    thing = np.isin(semantic, list(things))
    out[thing] = UNGROUPED_GREY
    grouped = thing & (instance > 0)
    if grouped.any():
        pairs, which = np.unique(np.stack([semantic[grouped], instance[grouped]], 1), axis=0, return_inverse=True)
        out[grouped] = distinct_colors(len(pairs))[which.reshape(-1)]
    out[np.isin(semantic, list(ignore_index))] = IGNORED_PALE
    return out


def render_instances(points, semantic, instance, things, *, ignore_index=(), view: str = "perspective",
                     width: int = 800, height: int = 500, point_size: float = 2.0, background=(255, 255, 255),
                     caption: str | None = None, backend: str = "auto") -> np.ndarray:
    """uint8 (H, W, 3) render of a cloud coloured by :func:`instance_colors`, with a caption
    counting the instances and a small legend.

    points: :class:`pcseg.io.PointCloud` or float (N, 3+) array (metres); semantic, instance:
    int (N,) train ids and instance ids.
    """
    from pcseg.viz.camera import preset
    from pcseg.viz.compose import caption_strip, hstack, legend_panel, vstack
    from pcseg.viz.render import Renderer, scene_data

    data = scene_data(points)
    if len(np.asarray(semantic).reshape(-1)) != len(data.xyz):
        raise PcsegValueError(f"{len(np.asarray(semantic).reshape(-1))} ids for {len(data.xyz)} points")
    rgb = instance_colors(semantic, instance, things, ignore_index)
    camera = preset(data.xyz, view, width / height)
    image = Renderer(width, height, background, backend).render(data.xyz, rgb, camera, point_size)
    entries = [(STUFF_GREY, "stuff"), (UNGROUPED_GREY, "thing, no instance"), (IGNORED_PALE, "ignored")]
    image = hstack([image, legend_panel(entries, height, "instances", background)], background=background)
    sem, inst = np.asarray(semantic).reshape(-1), np.asarray(instance).reshape(-1)
    grouped = np.isin(sem, list(things)) & (inst > 0)
    count = len(np.unique(np.stack([sem[grouped], inst[grouped]], 1), axis=0)) if grouped.any() else 0
    text = f"{count} instances, {len(data.xyz):,} points"
    text = f"{caption}   {text}" if caption else text
    return vstack([caption_strip(image.shape[1], text, background), image], background)
