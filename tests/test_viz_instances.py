"""Instance colours and ``pcseg view --instances`` (numpy renderer, no display)."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.cli import main
from pcseg.errors import PcsegValueError
from pcseg.viz.instances import STUFF_GREY, UNGROUPED_GREY, instance_colors


def test_instance_colors():
    semantic = np.array([1, 1, 1, 2, 2, 9, 9, 0, 1])
    instance = np.array([4, 4, 7, 4, 0, 0, 3, 0, 0])
    rgb = instance_colors(semantic, instance, things=[1, 2], ignore_index=[0])
    assert (rgb[0] == rgb[1]).all()  # one instance, one colour
    groups = {tuple(rgb[i]) for i in (0, 2, 3)}  # (1,4), (1,7), (2,4): same id, other class -> other colour
    assert len(groups) == 3 and not groups & {STUFF_GREY, UNGROUPED_GREY}
    assert tuple(rgb[5]) == tuple(rgb[6]) == STUFF_GREY  # stuff grey whatever its id
    assert tuple(rgb[4]) == tuple(rgb[8]) == UNGROUPED_GREY
    assert tuple(rgb[7]) != STUFF_GREY  # ignored: pale
    # colours follow the (class, id) pairs, not point order
    perm = np.random.default_rng(0).permutation(len(semantic))
    np.testing.assert_array_equal(instance_colors(semantic[perm], instance[perm], [1, 2], [0]), rgb[perm])
    with pytest.raises(PcsegValueError):
        instance_colors(semantic, instance[:3], [1])


def test_view_instances_png(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    n = 3000
    xyz = rng.uniform(-10, 10, (n, 3)).astype(np.float32)
    raw = np.full(n, 40)  # road
    inst = np.zeros(n, dtype=np.int64)
    for k, cx in enumerate((-5.0, 0.0, 5.0)):  # three cars
        near = np.abs(xyz[:, 0] - cx) < 1.0
        raw[near], inst[near] = 10, k + 1
    scan = tmp_path / "000000.bin"
    np.column_stack([xyz, np.zeros(n, np.float32)]).astype("<f4").tofile(scan)
    label = tmp_path / "000000.label"
    (raw.astype(np.uint32) | (inst.astype(np.uint32) << 16)).astype("<u4").tofile(label)
    out = tmp_path / "inst.png"
    assert main(["view", str(scan), "--labels", str(label), "--instances", "--png", str(out), "--backend", "numpy",
                 "--view", "bev", "--width", "320", "--height", "240"]) == 0
    image = np.asarray(Image.open(out).convert("RGB"))
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    expected = instance_colors(np.where(raw == 10, 1, 9), inst, [1])
    for k in (1, 2, 3):
        assert tuple(expected[inst == k][0]) in colours  # every car drawn in its own colour
    assert STUFF_GREY in colours
    capsys.readouterr()
    assert main(["view", str(scan), "--labels", str(label), "--instances"]) == 2
    assert "--png" in capsys.readouterr().err
