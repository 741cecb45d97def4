"""Write synthetic RGB-D frames to disk (PNG via Pillow; no open3d).

::

    out_dir/<scene>/depth/NNNNNN.png     16-bit depth, millimetres (depth_scale 1000), 0 = no return
    out_dir/<scene>/color/NNNNNN.png     8-bit RGB
    out_dir/<scene>/label/NNNNNN.png     8-bit ScanNet raw (NYU40) id per pixel
    out_dir/<scene>/instance/NNNNNN.png  16-bit instance id per pixel (0 = walls, floor, ceiling)
    out_dir/<scene>/intrinsics.json      Open3D camera JSON (read_depth accepts its path)
    out_dir/<scene>/poses.txt            camera-to-world 3x4 row-major per frame (room frame, z up)
"""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import numpy as np

from pcseg.errors import PcsegValueError
from pcseg.synth.indoor import DepthFrame, build_room, camera_json, depth_frame
from pcseg.synth.writer import check_dataset_args
from pcseg.atomic import atomic_write_bytes


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of a uint8 (H, W) / (H, W, 3) or uint16 (H, W) image."""
    from PIL import Image

    if image.dtype == np.uint16:
        pil = Image.fromarray(image)  # mode I;16: a 16-bit greyscale PNG
    elif image.dtype == np.uint8 and image.ndim in (2, 3):
        pil = Image.fromarray(image)
    else:
        raise PcsegValueError(f"png_bytes: need uint8 or uint16 (H, W[, 3]) image, got {image.dtype} {image.shape}")
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def write_frame(frame: DepthFrame, scene_dir, index: int) -> dict:
    """Write one frame's depth, colour, label and instance PNGs under ``scene_dir``; returns their paths."""
    scene_dir = Path(scene_dir)
    if frame.labels.max(initial=0) > 255:
        raise PcsegValueError(f"label ids above 255 do not fit the 8-bit label PNG (max {frame.labels.max()})")
    paths = {}
    for folder, image in (("depth", frame.depth), ("color", frame.color), ("label", frame.labels.astype(np.uint8)),
                          ("instance", frame.instance)):
        (scene_dir / folder).mkdir(parents=True, exist_ok=True)
        paths[folder] = scene_dir / folder / f"{index:06d}.png"
        atomic_write_bytes(paths[folder], png_bytes(image))
    return paths


def write_depth_dataset(out_dir, scenes=("scene0000",), frames_per_scene: int = 5, seed: int = 0, progress: bool = True,
                        **frame_options) -> Path:
    """Render ``frames_per_scene`` views of one random room per scene name and write them.

    The same arguments give byte-identical files. ``frame_options`` go to :func:`depth_frame`
    (``width``, ``height``, ``fx``, ``fy``, ``noise``, ``max_depth``). Returns ``Path(out_dir)``.
    """
    out, scenes = check_dataset_args(out_dir, scenes, "scenes", frames_per_scene, "frames_per_scene")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(scenes) * int(frames_per_scene), unit="frame", desc="synth rgbd")
    try:
        for name in scenes:
            room_seed = int(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]).generate_state(1)[0])
            room = build_room(room_seed)
            scene_dir = out / name
            scene_dir.mkdir(parents=True, exist_ok=True)
            poses = []
            for index in range(int(frames_per_scene)):
                frame = depth_frame(room_seed * 1000 + index, room=room, **frame_options)
                write_frame(frame, scene_dir, index)
                poses.append(" ".join(f"{v:.12e}" for v in frame.pose[:3].ravel()))
                if bar is not None:
                    bar.update(1)
            atomic_write_bytes(scene_dir / "intrinsics.json", (json.dumps(camera_json(frame.intrinsics), indent=1) + "\n").encode())
            atomic_write_bytes(scene_dir / "poses.txt", ("\n".join(poses) + "\n").encode())
    finally:
        if bar is not None:
            bar.close()
    info = {"generator": "pcseg.synth (indoor)", "seed": int(seed), "scenes": scenes, "frames_per_scene": int(frames_per_scene),
            "depth_scale": 1000.0, "labels": "ScanNet raw NYU40 ids (LabelMap.builtin('scannet'))"}
    atomic_write_bytes(out / "synth_info.json", (json.dumps(info, indent=1) + "\n").encode())
    return out
