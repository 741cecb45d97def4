"""read_depth on synthetic images: PNG and PGM, intrinsics forms, bad images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pcseg.errors import PcsegValueError, PointCloudFormatError
from pcseg.io import read_depth

INTR = (100.0, 120.0, 3.5, 2.5)  # fx, fy, cx, cy


def _depth(h=6, w=8, seed=0):
    depth = np.random.default_rng(seed).integers(500, 5000, (h, w)).astype(np.uint16)
    depth[0, 0] = 0  # no return
    depth[3, 5] = 0
    return depth


def _hand_points(depth, scale, fx, fy, cx, cy):
    out = []
    for v in range(depth.shape[0]):
        for u in range(depth.shape[1]):
            if depth[v, u]:
                z = depth[v, u] / scale
                out.append(((u - cx) * z / fx, (v - cy) * z / fy, z, u, v))
    return np.array(out)


def _write_pgm(path, image, maxval=65535):
    header = f"P5\n# test\n{image.shape[1]} {image.shape[0]}\n{maxval}\n".encode()
    path.write_bytes(header + image.astype(">u2").tobytes())


@pytest.mark.parametrize("suffix", [".png", ".pgm"])
def test_back_projection_matches_hand_computation(tmp_path, suffix):
    depth = _depth()
    path = tmp_path / f"d{suffix}"
    if suffix == ".png":
        Image.fromarray(depth).save(path)
    else:
        _write_pgm(path, depth)
    cloud = read_depth(path, INTR, depth_scale=1000.0)
    ref = _hand_points(depth, 1000.0, *INTR)
    assert len(cloud) == depth.size - 2
    np.testing.assert_allclose(cloud.xyz, ref[:, :3], rtol=1e-6)
    np.testing.assert_array_equal(cloud.pixels, ref[:, 3:].astype(np.int32))
    assert cloud.pixels.dtype == np.int32


def test_intrinsics_forms_and_colour(tmp_path):
    depth = _depth()
    Image.fromarray(depth).save(tmp_path / "d.png")
    color = np.random.default_rng(1).integers(0, 256, (6, 8, 3)).astype(np.uint8)
    Image.fromarray(color).save(tmp_path / "c.png")
    fx, fy, cx, cy = INTR
    (tmp_path / "cam.json").write_text(json.dumps(
        {"width": 8, "height": 6, "intrinsic_matrix": [fx, 0, 0, 0, fy, 0, cx, cy, 1]}))
    forms = [INTR, {"fx": fx, "fy": fy, "cx": cx, "cy": cy}, np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]),
             tmp_path / "cam.json"]
    clouds = [read_depth(tmp_path / "d.png", f, color_path=tmp_path / "c.png") for f in forms]
    for cloud in clouds[1:]:
        np.testing.assert_array_equal(cloud.xyz, clouds[0].xyz)
    u, v = clouds[0].pixels.T
    np.testing.assert_allclose(clouds[0].rgb, color[v, u] / 255.0, atol=1e-7)
    far = read_depth(tmp_path / "d.png", INTR, max_depth=2.0)
    assert len(far) == int(((depth > 0) & (depth <= 2000)).sum())


def test_bad_depth_images(tmp_path):
    Image.fromarray(np.full((6, 8), 7, np.uint8)).save(tmp_path / "eight.png")
    with pytest.raises(PointCloudFormatError, match="eight.png: depth image must be 16-bit"):
        read_depth(tmp_path / "eight.png", INTR)
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(PointCloudFormatError, match="rgb.png: depth image must be single-channel"):
        read_depth(tmp_path / "rgb.png", INTR)
    Image.fromarray(_depth()).save(tmp_path / "d.png")
    (tmp_path / "cam.json").write_text(json.dumps(
        {"width": 640, "height": 480, "intrinsic_matrix": [525, 0, 0, 0, 525, 0, 319.5, 239.5, 1]}))
    with pytest.raises(PointCloudFormatError, match="d.png: depth image is 8x6 but the intrinsics are for 640x480"):
        read_depth(tmp_path / "d.png", tmp_path / "cam.json")
    Image.fromarray(np.zeros((5, 8, 3), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(PointCloudFormatError, match="small.png: colour image is 8x5"):
        read_depth(tmp_path / "d.png", INTR, color_path=tmp_path / "small.png")
    Image.fromarray(np.zeros((6, 8), np.uint16)).save(tmp_path / "zero.png")
    with pytest.raises(PointCloudFormatError, match="zero.png: no pixel has a valid depth"):
        read_depth(tmp_path / "zero.png", INTR)
    with pytest.raises(PcsegValueError, match="intrinsics"):
        read_depth(tmp_path / "d.png", (1.0, 2.0))
    (tmp_path / "short.pgm").write_bytes(b"P5\n8 6\n65535\n" + b"\0" * 10)
    with pytest.raises(PointCloudFormatError, match="short.pgm: PGM holds 10 bytes"):
        read_depth(tmp_path / "short.pgm", INTR)
