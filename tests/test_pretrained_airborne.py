"""The bundled airborne model: small, ASPRS-coded, and it segments held-out synthetic tiles."""

import numpy as np
import pytest

from pcseg.engine.checkpoint import load_checkpoint
from pcseg.engine.segmenter import Segmenter
from pcseg.pretrained import checkpoint_path

pytestmark = pytest.mark.usefixtures("one_thread")


def _groups(codes):
    """0 ground, 1 vegetation (ASPRS 3-5), 2 building, -1 other."""
    out = np.full(len(codes), -1)
    out[np.isin(codes, (2, 11))] = 0
    out[np.isin(codes, (3, 4, 5))] = 1
    out[codes == 6] = 2
    return out


def test_airborne_checkpoint_is_small_and_self_describing():
    path = checkpoint_path("airborne")
    assert path.stat().st_size < 20 * 2**20
    payload = load_checkpoint(path)
    assert payload["label_map"]["name"] == "asprs"
    # only terrain-relative heights and local shape: nothing that depends on where the tile lies
    # or its elevation
    from pcseg.datasets.features import SHAPE_SCALES, TERRAIN_SCALES

    allowed = set(TERRAIN_SCALES) | set(SHAPE_SCALES) | {"height_above_slope_ground", "ones"}
    assert set(payload["config"]["dataset"]["features"]) <= allowed
    assert "optimizer" not in payload


def _terrain_slope(cloud) -> float:
    """Steepest slope of the plane fitted to a tile's ground points (rise per metre)."""
    g = cloud.labels == 2
    a = np.column_stack([cloud.xyz[g, :2], np.ones(int(g.sum()))])
    coef = np.linalg.lstsq(a, cloud.xyz[g, 2], rcond=None)[0]
    return float(np.hypot(coef[0], coef[1]))


def _mean_iou(seg, clouds) -> float:
    ref = np.concatenate([_groups(c.labels) for c in clouds])
    pred = np.concatenate([_groups(seg.label_map.to_raw(seg(c))) for c in clouds])
    scored = ref >= 0
    ious = []
    for k in range(3):
        union = np.sum(((ref == k) | (pred == k)) & scored)
        if union:
            ious.append(np.sum((ref == k) & (pred == k) & scored) / union)
    return float(np.mean(ious))


def _held_out_tiles(steep: bool, count: int):
    """Synthetic tiles never drawn in training (training used seeds 0..15), picked by their
    terrain only: steeper or gentler than the slope-limited ground's 20% limit."""
    from pcseg.datasets.terrain import SLOPE_LIMIT
    from pcseg.synth.airborne import airborne_tile

    picked = []
    for seed in range(777001, 777101):
        cloud = airborne_tile(seed, size=70)
        if (_terrain_slope(cloud) > SLOPE_LIMIT) == steep:
            picked.append(cloud)
            if len(picked) == count:
                return picked
    raise AssertionError("not enough held-out tiles")


def test_airborne_model_separates_ground_vegetation_buildings_on_held_out_tiles():
    seg = Segmenter.from_checkpoint(checkpoint_path("airborne"))
    assert seg.chunk_margin >= 12.5  # the terrain features' context
    # a constant prediction (all ground) scores ground IoU = its share and 0 elsewhere: about 0.25
    assert _mean_iou(seg, _held_out_tiles(steep=False, count=3)) > 0.5


@pytest.mark.xfail(strict=True, reason="known weakness (docs/airborne.md): on terrain steeper than the "
                   "slope-limited ground's 20% limit, ground reads as raised and is taken for building")
def test_airborne_model_on_terrain_steeper_than_the_slope_limit():
    seg = Segmenter.from_checkpoint(checkpoint_path("airborne"))
    assert _mean_iou(seg, _held_out_tiles(steep=True, count=2)) > 0.5


def test_airborne_model_on_the_real_tiles(shared_data, tmp_path):
    # The bundled model was trained on both real tiles (leave-one-out figures: docs/airborne.md),
    # so this checks the shipped weights through the LAS path (feet converted, tiles with context)
    # against the files' own classes, not generalisation. A constant "ground" answer scores about
    # 0.25 on las14_fmt6.las and 0.03 on sample_c.las (ground IoU = its share, 0 elsewhere).
    laspy = pytest.importorskip("laspy")
    from pcseg.engine.las_stream import segment_las

    seg = Segmenter.from_checkpoint(checkpoint_path("airborne"))
    scores = []
    for name in ("las14_fmt6.las", "sample_c.las"):
        src = shared_data / "las" / name
        segment_las(seg, src, tmp_path / name, progress=False)
        ref = _groups(np.asarray(laspy.read(str(src)).classification))
        pred = _groups(np.asarray(laspy.read(str(tmp_path / name)).classification))
        scored = ref >= 0
        ious = [np.sum((ref == k) & (pred == k) & scored) / np.sum(((ref == k) | (pred == k)) & scored)
                for k in range(3)]
        scores.append(np.mean(ious))
    assert min(scores) > 0.45
