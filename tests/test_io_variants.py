"""Real-world PLY/PCD variants: upper-case field names, comma/tab separated ASCII, every PLY type
name, packed colours, compressed PCD, meshes, and clouds without z. The corpus is made here;
references are the arrays the files were written from, or Open3D's reading where it is right."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pcseg.errors import PointCloudFormatError
from pcseg.io import read_points
from pcseg.io.ply import PLY_DTYPES

RNG = np.random.default_rng(20)
XYZ = np.round(RNG.uniform(-50, 50, (25, 3)), 3)
INTENSITY = RNG.integers(0, 255, 25)
LABELS = RNG.integers(0, 20, 25)


def _pcd_header(fields, sizes, types, n, data):
    return (f"# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS {' '.join(fields)}\n"
            f"SIZE {' '.join(map(str, sizes))}\nTYPE {' '.join(types)}\nCOUNT {' '.join(['1'] * len(fields))}\n"
            f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {data}\n").encode()


@pytest.mark.parametrize("sep", [" ", "\t", ",", ", "])
@pytest.mark.parametrize("names", [("x", "y", "z", "intensity", "label"), ("X", "Y", "Z", "Intensity", "Label")])
def test_ascii_pcd_separators_and_case(tmp_path, sep, names):
    """PDAL writes FIELDS X Y Z and may separate values by commas or tabs; Open3D reads 0 points."""
    rows = "\n".join(sep.join([f"{v:.3f}" for v in p] + [str(i), str(lab)])
                     for p, i, lab in zip(XYZ, INTENSITY, LABELS))
    path = tmp_path / "pdal.pcd"
    path.write_bytes(_pcd_header(names, [8, 8, 8, 2, 4], ["F", "F", "F", "U", "U"], len(XYZ), "ascii") + rows.encode())
    cloud = read_points(path)
    np.testing.assert_allclose(cloud.world_xyz(), XYZ, atol=1e-4)
    np.testing.assert_array_equal(cloud.intensity, INTENSITY)
    np.testing.assert_array_equal(cloud.labels, LABELS)


@pytest.mark.parametrize("upper", [False, True])
def test_binary_pcd_any_case(tmp_path, upper):
    names = ["X", "Y", "Z", "INTENSITY"] if upper else ["x", "y", "z", "intensity"]
    records = np.empty(len(XYZ), dtype=[("x", "<f8"), ("y", "<f8"), ("z", "<f8"), ("i", "<u2")])
    records["x"], records["y"], records["z"], records["i"] = XYZ[:, 0], XYZ[:, 1], XYZ[:, 2], INTENSITY
    path = tmp_path / "b.pcd"
    path.write_bytes(_pcd_header(names, [8, 8, 8, 2], ["F", "F", "F", "U"], len(XYZ), "binary") + records.tobytes())
    cloud = read_points(path)
    np.testing.assert_allclose(cloud.world_xyz(), XYZ, atol=1e-4)
    np.testing.assert_array_equal(cloud.intensity, INTENSITY)


@pytest.mark.parametrize("mode", ["ascii", "binary", "binary_compressed"])
def test_pcd_written_by_open3d_reads_as_open3d_reads_it(tmp_path, mode):
    """Open3D reads its own lower-case PCD correctly (including LZF and packed rgb): the reference."""
    o3d = pytest.importorskip("open3d")
    n = 3000
    pcd = o3d.t.geometry.PointCloud()
    xyz = np.concatenate([RNG.uniform(-20, 20, (n // 2, 3)), np.zeros((n - n // 2, 3))]).astype(np.float32)
    pcd.point["positions"] = o3d.core.Tensor(xyz)  # a constant half makes LZF emit overlapping copies
    pcd.point["colors"] = o3d.core.Tensor(RNG.uniform(0, 1, (n, 3)).astype(np.float32))
    pcd.point["normals"] = o3d.core.Tensor(RNG.normal(size=(n, 3)).astype(np.float32))
    pcd.point["intensity"] = o3d.core.Tensor(RNG.uniform(0, 1, (n, 1)).astype(np.float32))
    path = str(tmp_path / f"{mode}.pcd")
    o3d.t.io.write_point_cloud(path, pcd, write_ascii=mode == "ascii", compressed=mode == "binary_compressed")
    assert f"DATA {mode}".encode() in open(path, "rb").read(400)
    theirs = o3d.t.io.read_point_cloud(path).point
    ours = read_points(path)
    np.testing.assert_allclose(ours.xyz, theirs["positions"].numpy(), atol=1e-5)
    np.testing.assert_allclose(ours.normals, theirs["normals"].numpy(), atol=1e-5)
    np.testing.assert_allclose(ours.intensity, theirs["intensity"].numpy().ravel(), atol=1e-5)
    np.testing.assert_allclose(ours.rgb * 255, theirs["colors"].numpy(), atol=1e-3)  # packed 8-bit


def _ply_bytes(fmt, types, names, table):
    header = [f"ply\nformat {fmt} 1.0\ncomment variant\nelement vertex {len(table)}"]
    header += [f"property {t} {nm}" for t, nm in zip(types, names)]
    head = ("\n".join(header) + "\nend_header\n").encode()
    if fmt == "ascii":
        return head + "\n".join(" ".join(str(int(v)) for v in row) for row in table).encode() + b"\n"
    order = "<" if fmt == "binary_little_endian" else ">"
    dtype = np.dtype([(nm, order + PLY_DTYPES[t]) for t, nm in zip(types, names)])
    records = np.empty(len(table), dtype)
    for i, nm in enumerate(names):
        records[nm] = table[:, i]
    return head + records.tobytes()


@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian", "binary_big_endian"])
@pytest.mark.parametrize("type_name", sorted(PLY_DTYPES))
def test_every_ply_scalar_type(tmp_path, fmt, type_name):
    table = RNG.integers(0, 100, (12, 4))  # fits every type, signed or not
    path = tmp_path / "t.ply"
    path.write_bytes(_ply_bytes(fmt, [type_name] * 3 + ["uchar"], ["X", "Y", "Z", "Label"], table))
    cloud = read_points(path)
    np.testing.assert_array_equal(cloud.xyz, table[:, :3].astype(np.float32))
    np.testing.assert_array_equal(cloud.labels, table[:, 3])


@pytest.mark.parametrize("types", [["int8", "uint16", "int32", "float64"], ["char", "ushort", "uchar", "double"]])
@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian"])
def test_ply_without_z_is_a_clear_error(tmp_path, types, fmt):
    """Open3D read one of these as 1 point and raised a bare RuntimeError on the other."""
    path = tmp_path / "noz.ply"
    path.write_bytes(_ply_bytes(fmt, types, ["x", "y", "intensity", "label"], RNG.integers(0, 100, (5, 4))))
    with pytest.raises(PointCloudFormatError, match=r"noz\.ply: no z field"):
        read_points(path)
    done = subprocess.run([sys.executable, "-m", "pcseg", "info", str(path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("pcseg info: error:") and "noz.ply" in done.stderr


def test_pcd_without_z_is_a_clear_error(tmp_path):
    path = tmp_path / "noz.pcd"
    path.write_bytes(_pcd_header(["x", "y", "i"], [4, 4, 4], ["F", "F", "F"], 2, "ascii") + b"1 2 3\n4 5 6\n")
    with pytest.raises(PointCloudFormatError, match=r"noz\.pcd: no z field"):
        read_points(path)


def test_mesh_ply_with_lists_before_and_after_the_vertices(tmp_path):
    """A face element (list property) before and after ``vertex`` is stepped over, both encodings."""
    faces = [[0, 1, 2], [2, 3, 0, 1]]
    for fmt in ("ascii", "binary_big_endian"):
        order = ">"
        head = (f"ply\nformat {fmt} 1.0\nelement face {len(faces)}\nproperty list uchar int vertex_indices\n"
                f"element vertex {len(XYZ)}\nproperty double x\nproperty double y\nproperty double z\n"
                f"element edge 1\nproperty int a\nend_header\n").encode()
        if fmt == "ascii":
            body = "".join(f"{len(f)} {' '.join(map(str, f))}\n" for f in faces)
            body += "".join(" ".join(repr(float(v)) for v in p) + "\n" for p in XYZ) + "0\n"
            data = head + body.encode()
        else:
            data = head + b"".join(np.array([len(f)], ">u1").tobytes() + np.array(f, ">i4").tobytes() for f in faces)
            data += XYZ.astype(order + "f8").tobytes() + np.array([0], ">i4").tobytes()
        path = tmp_path / f"mesh_{fmt}.ply"
        path.write_bytes(data)
        np.testing.assert_allclose(read_points(path).world_xyz(), XYZ, atol=1e-4)


@pytest.mark.parametrize("text, match", [
    (b"ply\nformat binary_little_endian 1.0\nelement vertex 1000000\nproperty float x\nproperty float y\n"
     b"property float z\nend_header\n" + bytes(12), "promises 1000000 vertices"),
    (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
     b"end_header\n1 2 3\n", "promises 3 vertices"),
    (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float128 x\nend_header\n1\n", "unknown property type"),
    (b"ply\nformat ascii 1.0\nelement vertex -4\nend_header\n", "element <name> <count>"),
    (b"# .PCD v0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 99999999\nHEIGHT 1\nPOINTS 99999999\n"
     b"DATA binary\n" + bytes(24), "cannot fit"),
    (b"# .PCD v0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nPOINTS 2\nDATA binary_compressed\n"
     + np.array([40, 24], "<u4").tobytes() + bytes(40), "corrupt"),
])
def test_damaged_headers_are_refused_with_the_file_name(tmp_path, text, match):
    path = tmp_path / ("bad.ply" if text.startswith(b"ply") else "bad.pcd")
    path.write_bytes(text)
    with pytest.raises(PointCloudFormatError, match=match) as info:
        read_points(path)
    assert str(path) in str(info.value)


def _las_bytes(tmp_path, suffix, n=120, version="1.2", point_format=3):
    laspy = pytest.importorskip("laspy")
    header = laspy.LasHeader(point_format=point_format, version=version)
    las = laspy.LasData(header)
    las.x, las.y, las.z = XYZ[np.arange(n) % len(XYZ)].T
    path = tmp_path / f"ok{suffix}"
    las.write(str(path))
    return bytearray(path.read_bytes())


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_las_header_counts_beyond_the_file_are_refused_at_once(tmp_path, suffix):
    """laspy trusts these counts: it looped for minutes over a damaged VLR count, and read for
    as long when the point count exceeded the file (LAS 1.2 layout: VLR count at byte 100,
    point count at 107)."""
    import struct

    if suffix == ".laz":
        laspy = pytest.importorskip("laspy")
        if not laspy.LazBackend.detect_available():
            pytest.skip("no LAZ backend")
    good = _las_bytes(tmp_path, suffix)
    for field, at, value, match in [("vlrs", 100, 4_000_000_000, "VLRs cannot fit"),
                                    ("points", 107, 50_000_000, "points")]:
        data = bytearray(good)
        struct.pack_into("<I", data, at, value)
        path = tmp_path / f"bad_{field}{suffix}"
        path.write_bytes(bytes(data))
        with pytest.raises(PointCloudFormatError, match=rf"bad_{field}\{suffix}: damaged LAS/LAZ header: .*{match}"):
            read_points(path)
    assert len(read_points(tmp_path / f"ok{suffix}")) == 120


def test_las14_header_counts_are_checked(tmp_path):
    import struct

    good = _las_bytes(tmp_path, ".las", version="1.4", point_format=6)
    data = bytearray(good)
    struct.pack_into("<Q", data, 247, 10**12)  # the 64-bit point count of LAS 1.4
    (tmp_path / "big14.las").write_bytes(bytes(data))
    with pytest.raises(PointCloudFormatError, match="big14.las: damaged LAS/LAZ header: it promises 1000000000000"):
        read_points(tmp_path / "big14.las")
    assert len(read_points(tmp_path / "ok.las")) == 120
