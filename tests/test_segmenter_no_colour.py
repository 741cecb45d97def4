"""A model trained with colour dropout runs on colour-free clouds (fed the dropout grey); one
trained without it refuses them with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcseg.engine.segmenter import Segmenter
from pcseg.errors import PcsegValueError
from pcseg.io import LabelMap, PointCloud
from pcseg.models.minkunet import MinkUNet


def _segmenter(color_drop):
    torch.manual_seed(0)
    lm = LabelMap.builtin("scannet")
    model = MinkUNet(lm.num_classes, 6, voxel_size=0.1, layers=[1] * 8, width=0.25)
    seg = Segmenter(model, lm, ["xyz", "rgb"], threads=1)
    seg.config = {"dataset": {"augment": {"color_drop": color_drop}}}
    return seg


def test_colour_free_cloud_gets_the_dropout_grey():
    from pcseg.datasets.transforms import NO_COLOR

    rng = np.random.default_rng(0)
    xyz = rng.uniform(0, 4, (3000, 3)).astype(np.float32)
    seg = _segmenter(0.2)
    grey = seg(PointCloud(xyz=xyz, rgb=np.full((3000, 3), NO_COLOR, np.float32)))
    np.testing.assert_array_equal(seg(PointCloud(xyz=xyz)), grey)
    np.testing.assert_array_equal(seg(xyz), grey)  # a bare (N, 3) array too
    coloured = seg(PointCloud(xyz=xyz, rgb=rng.random((3000, 3)).astype(np.float32)))
    assert coloured.shape == grey.shape  # colour, when given, is used as is


def test_colour_free_cloud_is_refused_without_colour_dropout():
    seg = _segmenter(0.0)
    with pytest.raises(PcsegValueError, match="rgb"):
        seg(PointCloud(xyz=np.zeros((10, 3), np.float32)))
