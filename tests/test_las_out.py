"""Classified LAS/LAZ out: every field but classification, the header, VLRs (CRS), EVLRs and extra
bytes come back equal when read with laspy; a chunked, tiled run equals the in-memory run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

laspy = pytest.importorskip("laspy")

from pcseg.cli import main  # noqa: E402
from pcseg.engine.las_stream import segment_las  # noqa: E402
from pcseg.engine.segmenter import Segmenter  # noqa: E402
from pcseg.io import LabelMap, read_points  # noqa: E402

WKT = ('PROJCS["ETRS89 / UTM zone 32N",GEOGCS["ETRS89",DATUM["European_Terrestrial_Reference_System_1989",'
       'SPHEROID["GRS 1980",6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
       'PROJECTION["Transverse_Mercator"],PARAMETER["central_meridian",9],PARAMETER["scale_factor",0.9996],'
       'PARAMETER["false_easting",500000],UNIT["metre",1]]')


def make_tile(path, version="1.4", point_format=6, n=3000, extent=60.0, seed=0):
    """A synthetic georeferenced tile (UTM-sized coordinates) with every field of the format set."""
    from laspy.vlrs.known import WktCoordinateSystemVlr
    from laspy.vlrs.vlrlist import VLRList

    rng = np.random.default_rng(seed)
    header = laspy.LasHeader(version=version, point_format=point_format)
    header.scales = np.array([0.01, 0.01, 0.001])
    header.offsets = np.array([512000.0, 5403000.0, 200.0])
    header.system_identifier = "pcseg test"
    header.generating_software = "make_tile"
    header.vlrs.append(WktCoordinateSystemVlr(WKT))
    header.vlrs.append(laspy.VLR("pcseg-test", 7, "opaque bytes", bytes(range(40))))
    if point_format >= 6:
        header.global_encoding.wkt = True
        header.add_extra_dims([laspy.ExtraBytesParams(name="range", type=np.float32, description="metres"),
                               laspy.ExtraBytesParams(name="echo_width", type=np.uint8)])
    las = laspy.LasData(header)
    x = 512345.0 + rng.uniform(0, extent, n)
    y = 5403210.0 + rng.uniform(0, extent, n)
    z = 231.0 + 0.05 * (x - x.min()) + np.where(rng.random(n) < 0.3, rng.uniform(2, 15, n), 0.0)
    las.x, las.y, las.z = x, y, z
    las.intensity = rng.integers(0, 65535, n, dtype=np.uint16)
    returns = rng.integers(1, 4, n).astype(np.uint8)
    las.number_of_returns = returns
    las.return_number = np.minimum(rng.integers(1, 4, n), returns).astype(np.uint8)
    las.classification = rng.choice([1, 2, 5, 6], n).astype(np.uint8)
    las.user_data = rng.integers(0, 255, n, dtype=np.uint8)
    las.point_source_id = rng.integers(0, 9, n, dtype=np.uint16)
    las.gps_time = rng.uniform(3e5, 3.1e5, n)
    las.withheld = rng.random(n) < 0.1
    if point_format >= 6:
        las.scan_angle = rng.integers(-3000, 3000, n, dtype=np.int16)
        las.range = rng.uniform(500, 900, n).astype(np.float32)
        las.echo_width = rng.integers(0, 255, n, dtype=np.uint8)
        las.evlrs = VLRList([laspy.VLR("pcseg-test", 9, "an extended record", b"e" * 300)])
    else:
        las.scan_angle_rank = rng.integers(-30, 30, n, dtype=np.int8)
    if "red" in las.point_format.dimension_names:
        las.red, las.green, las.blue = (rng.integers(0, 65535, n, dtype=np.uint16) for _ in range(3))
    las.write(str(path))
    return path


def tiny_segmenter(features=("xyz", "intensity"), seed=0, **options):
    """A randomly initialised small MinkUNet with the ASPRS map (labels vary from point to point)."""
    from pcseg.datasets.features import feature_width
    from pcseg.engine.builders import build_model

    torch.manual_seed(seed)
    label_map = LabelMap.builtin("asprs")
    model = build_model({"name": "MinkUNet", "voxel_size": 1.0, "layers": [1] * 8, "width": 0.25},
                        label_map.num_classes, feature_width(features), label_map.name)
    return Segmenter(model, label_map, list(features), **options)


def _vlrs(header, skip_extra_bytes=False):
    """(user id, record id, bytes) of the VLRs, without laszip's (compression) and, when the output
    gained a dimension, without the extra-bytes description."""
    return [(v.user_id, v.record_id, bytes(v.record_data_bytes())) for v in header.vlrs
            if v.user_id != "laszip encoded" and not (skip_extra_bytes and (v.user_id, v.record_id) == ("LASF_Spec", 4))]


def assert_same_but_classification(src, dst, extra=()):
    a, b = laspy.read(str(src)), laspy.read(str(dst))
    ha, hb = a.header, b.header
    assert (hb.version, hb.point_format.id) == (ha.version, ha.point_format.id)
    np.testing.assert_array_equal(hb.scales, ha.scales)
    np.testing.assert_array_equal(hb.offsets, ha.offsets)
    np.testing.assert_array_equal(hb.mins, ha.mins)
    np.testing.assert_array_equal(hb.maxs, ha.maxs)
    assert hb.point_count == ha.point_count
    assert list(hb.number_of_points_by_return) == list(ha.number_of_points_by_return)
    assert (hb.system_identifier, hb.generating_software, hb.creation_date) == \
        (ha.system_identifier, ha.generating_software, ha.creation_date)
    assert hb.global_encoding.value == ha.global_encoding.value
    assert _vlrs(hb, bool(extra)) == _vlrs(ha, bool(extra))
    assert [(v.user_id, v.record_id, bytes(v.record_data_bytes())) for v in b.evlrs or []] == \
        [(v.user_id, v.record_id, bytes(v.record_data_bytes())) for v in a.evlrs or []]
    assert list(b.point_format.dimension_names) == list(a.point_format.dimension_names) + list(extra)
    for name in a.point_format.dimension_names:
        if name != "classification":
            np.testing.assert_array_equal(np.asarray(b[name]), np.asarray(a[name]), err_msg=name)
    return a, b


@pytest.mark.parametrize("version, point_format, suffix", [("1.2", 3, ".las"), ("1.4", 6, ".laz"),
                                                           ("1.4", 7, ".las"), ("1.2", 3, ".laz")])
def test_classified_copy_keeps_every_other_field(tmp_path, version, point_format, suffix):
    src = make_tile(tmp_path / f"in{suffix}", version, point_format)
    seg = tiny_segmenter()
    dst = tmp_path / "out" / f"tile{suffix}"
    segment_las(seg, src, dst, progress=False)
    a, b = assert_same_but_classification(src, dst)
    assert (dst.read_bytes()[:4] == b"LASF") and b.header.are_points_compressed == (suffix == ".laz")
    # classification = the model's labels on the in-memory cloud, as ASPRS codes
    expected = seg.label_map.to_raw(seg(read_points(src)))
    np.testing.assert_array_equal(np.asarray(b.classification), expected)
    assert len(np.unique(expected)) > 1  # the check would be weak with one class
    if point_format < 6:  # the flag bits sharing the classification byte are untouched
        np.testing.assert_array_equal(np.asarray(b.withheld), np.asarray(a.withheld))
    crs = [v for v in b.header.vlrs if type(v).__name__ == "WktCoordinateSystemVlr"]
    assert crs and crs[0].string.rstrip("\x00") == WKT


def test_probability_extra_bytes(tmp_path):
    src = make_tile(tmp_path / "in.laz", "1.4", 6)
    seg = tiny_segmenter()
    dst = tmp_path / "out.laz"
    segment_las(seg, src, dst, probability=True, progress=False)
    _, b = assert_same_but_classification(src, dst, extra=("probability",))
    proba = seg.predict_proba(read_points(src))
    np.testing.assert_allclose(np.asarray(b.probability), proba.max(1), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(b.classification), seg.label_map.to_raw(proba.argmax(1)))


def test_chunked_tiled_run_equals_in_memory_run(tmp_path):
    src = make_tile(tmp_path / "big.laz", "1.4", 6, n=6000, extent=120.0, seed=3)
    seg = tiny_segmenter(max_points=1500, chunk_margin=4.0)
    whole = tmp_path / "whole.las"
    stats = segment_las(seg, src, whole, chunk_points=10**9, progress=False, probability=True)
    assert stats["tiles"] >= 4
    chunked = tmp_path / "chunked.las"
    segment_las(seg, src, chunked, chunk_points=777, progress=False, probability=True)
    a, b = laspy.read(str(whole)), laspy.read(str(chunked))
    np.testing.assert_array_equal(np.asarray(a.classification), np.asarray(b.classification))
    np.testing.assert_array_equal(np.asarray(a.probability), np.asarray(b.probability))
    assert_same_but_classification(src, chunked, extra=("probability",))
    # tiles with context agree with the untiled run on most points (a context-free model: on all)
    untiled = seg.label_map.to_raw(tiny_segmenter(max_points=10**9)(read_points(src)))
    assert (np.asarray(b.classification) == untiled).mean() > 0.8


def test_tiles_cover_every_point_once_for_a_per_point_model(tmp_path):
    # a model without context (ones + intensity through a point-wise MLP) gives the same labels
    # however the tile is cut: tiled output == untiled in-memory labels, exactly
    src = make_tile(tmp_path / "t.las", "1.2", 3, n=5000, extent=100.0, seed=5)
    seg = tiny_segmenter(features=("intensity",), max_points=800, chunk_margin=3.0)
    seg.model = _PointWise(seg.num_classes)
    stats = segment_las(seg, src, tmp_path / "o.las", chunk_points=999, progress=False)
    assert stats["tiles"] >= 9
    out = laspy.read(str(tmp_path / "o.las"))
    seg.max_points = 10**9
    np.testing.assert_array_equal(np.asarray(out.classification), seg.label_map.to_raw(seg(read_points(src))))


class _PointWise(torch.nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, 1
        torch.manual_seed(1)
        self.net = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, num_classes))

    def forward_ragged(self, xyz, feats, offsets):
        return self.net(feats / 65535.0 * 8 - 4)


def test_cli_segment_las_and_errors(tmp_path, capsys):
    from pcseg.engine.checkpoint import label_map_spec, save_checkpoint

    seg = tiny_segmenter()
    ckpt = save_checkpoint(tmp_path / "m.pt", {
        "config": {"dataset": {"features": ["xyz", "intensity"]},
                   "model": {"name": "MinkUNet", "voxel_size": 1.0, "layers": [1] * 8, "width": 0.25}},
        "label_map": label_map_spec(seg.label_map), "model": seg.model.state_dict()})
    src = make_tile(tmp_path / "tile.laz", "1.4", 6)
    code = main(["segment", "--checkpoint", str(ckpt), str(src), "--out", str(tmp_path / "o"), "--format", "laz",
                 "--probability"])
    assert code == 0
    assert "points/s" in capsys.readouterr().out
    assert_same_but_classification(src, tmp_path / "o" / "tile.laz", extra=("probability",))
    # a non-LAS input with --format las: one clear error, no traceback
    np.zeros((10, 4), np.float32).tofile(tmp_path / "scan.bin")
    assert main(["segment", "--checkpoint", str(ckpt), str(tmp_path / "scan.bin"), "--out", str(tmp_path / "o2"),
                 "--format", "las"]) == 2
    err = capsys.readouterr().err
    assert "scan.bin" in err and "Traceback" not in err
    # a broken LAS names the file
    (tmp_path / "broken.las").write_bytes(b"LASF" + b"\0" * 50)
    assert main(["segment", "--checkpoint", str(ckpt), str(tmp_path / "broken.las"), "--out", str(tmp_path / "o3"),
                 "--format", "las"]) == 2
    assert "broken.las" in capsys.readouterr().err


def test_info_answers_large_tiles_from_the_header(tmp_path, capsys, monkeypatch):
    import json

    import pcseg.cli.info as info

    src = make_tile(tmp_path / "tile.laz", "1.4", 6, n=4000)
    monkeypatch.setattr(info, "LAS_HEADER_ONLY", 1000)

    def no_points(*args, **kwargs):
        raise AssertionError("info read the points of a large tile")

    monkeypatch.setattr(laspy.LasReader, "read_points", no_points)
    monkeypatch.setattr(laspy.LasReader, "read", no_points)
    assert main(["info", str(src), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    header = laspy.open(str(src)).header
    assert summary["points"] == 4000 and "labels" not in summary
    np.testing.assert_allclose(summary["bounds_min"], header.mins)
    assert summary["las"]["point_format"] == 6 and summary["las"]["extra_dimensions"] == ["range", "echo_width"]
    assert summary["las"]["crs"].rstrip("\x00") == WKT and summary["las"]["compressed"]
    monkeypatch.undo()
    # small tiles (or --full): every point is read; classes named with the ASPRS map by default
    assert main(["info", str(src), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    counts = {r["id"]: (r["count"], r["name"]) for r in summary["labels"]}
    classes = np.asarray(laspy.read(str(src)).classification)
    assert counts[6] == (int((classes == 6).sum()), "building")
    assert main(["info", str(src)]) == 0
    assert "point format 6, compressed (LAZ), extra bytes range, echo_width" in capsys.readouterr().out


def test_feet_tiles_reach_the_model_in_metres(tmp_path):
    # a State Plane tile in US survey feet: the model must see metres (features, voxel sizes)
    from pcseg.io import PointCloud
    from pcseg.io.las import las_metres_per_unit

    feet_wkt = WKT.replace('UNIT["metre",1]', 'UNIT["US survey foot",0.3048006096012192]')
    src = make_tile(tmp_path / "ft.las", "1.4", 6, n=2500)
    las = laspy.read(str(src))
    las.header.vlrs[0].string = feet_wkt
    las.write(str(tmp_path / "feet.las"))
    header = laspy.open(str(tmp_path / "feet.las")).header
    assert las_metres_per_unit(header) == pytest.approx(0.3048006096012192)
    seg = tiny_segmenter()
    segment_las(seg, tmp_path / "feet.las", tmp_path / "out.las", progress=False)
    cloud = read_points(tmp_path / "feet.las")
    # the model's frame: metres, local to the whole metre below the tile's offset (grid on whole metres)
    world_min = cloud.offset * 0.3048006096012192
    local = cloud.xyz.astype(np.float64) * 0.3048006096012192 + (world_min - np.floor(world_min))
    metres = PointCloud(xyz=local.astype(np.float32), intensity=cloud.intensity)
    got = np.asarray(laspy.read(str(tmp_path / "out.las")).classification)
    np.testing.assert_array_equal(got, seg.label_map.to_raw(seg(metres)))
    assert not np.array_equal(got, seg.label_map.to_raw(seg(cloud)))  # feet read as metres differ


def test_feet_to_metres_keeps_world_coordinates_on_a_whole_metre_grid():
    # hand-computed: offset 1000.5 ft = 304.9603 m -> local frame at 304 m, points shifted by 0.9603 m
    from pcseg.io.las import scale_to_metres

    ft = 0.3048
    xyz = np.array([[0.0, 0.0, 0.0], [10.0, 20.0, 3.0]], np.float32)
    offset = np.array([1000.5, 2000.25, 100.0])
    local, new_offset = scale_to_metres(xyz, offset, ft)
    np.testing.assert_array_equal(new_offset, [304.0, 609.0, 30.0])
    np.testing.assert_allclose(local + new_offset, (xyz + offset) * ft, atol=1e-5)
    same, same_offset = scale_to_metres(xyz, offset, 1.0)  # metres: untouched
    assert same is xyz and same_offset is offset
