"""Raw ids that do not fit a label map: the error names the built-in maps whose ids they fit.

The ids are hand-made from each dataset's own definition: NYU40 ids (ScanNet, 0..40), the
SemanticKITTI ids (10 car, 40 road, 44 parking, 70 vegetation, 252 moving car), S3DIS class
indices 0..12 and ASPRS LAS classes (2 ground, 6 building, 9 water, 17 bridge deck, 18 high noise).
"""

import struct

import numpy as np
import pytest

from pcseg.cli import main
from pcseg.errors import PcsegValueError
from pcseg.io import LabelMap, write_labels
from pcseg.io.labelmap import fitting_builtins

NYU40 = [1, 3, 14, 33, 39, 40]
KITTI = [0, 10, 40, 44, 70, 252]
S3DIS = list(range(13))
ASPRS = [2, 6, 9, 17, 18]


@pytest.mark.parametrize("ids, wrong_maps, hint", [
    (NYU40, ["semantickitti", "s3dis"], "these look like NYU40 ids: try --label-map scannet"),
    (KITTI, ["scannet", "s3dis"], "these look like SemanticKITTI ids: try --label-map semantickitti"),
])
def test_one_fitting_map_is_named(ids, wrong_maps, hint):
    for name in wrong_maps:
        with pytest.raises(PcsegValueError, match=f"to_train \\({name}\\).*{hint}"):
            LabelMap.builtin(name).to_train(np.array(ids))


def test_several_fitting_maps_are_listed_tightest_first():
    # S3DIS indices 0..12 are also valid ASPRS classes and NYU40 ids
    assert fitting_builtins(np.array(S3DIS)) == ["s3dis", "asprs", "scannet"]
    with pytest.raises(PcsegValueError, match=r"fit the built-in label maps s3dis \(S3DIS class indices 0..12\), "
                                              r"asprs \(ASPRS LAS classes\), scannet \(NYU40 ids\)"):
        LabelMap.builtin("semantickitti").to_train(np.array(S3DIS))
    # ASPRS classes 13..18 are beyond S3DIS's 0..12 but still NYU40 ids
    assert fitting_builtins(np.array(ASPRS)) == ["asprs", "scannet"]
    with pytest.raises(PcsegValueError, match=r"label maps asprs \(ASPRS LAS classes\), scannet"):
        LabelMap.builtin("s3dis").to_train(np.array(ASPRS))


def test_ids_that_fit_no_map_get_no_guess():
    assert fitting_builtins(np.array([3, 7000])) == []
    with pytest.raises(PcsegValueError) as info:
        LabelMap.builtin("scannet").to_train(np.array([3, 7000]))
    assert "7000" in str(info.value) and "try" not in str(info.value)
    # the ASPRS map sends unknown classes to unclassified instead of failing
    np.testing.assert_array_equal(LabelMap.builtin("asprs").to_train(np.array([7000])), [0])


def _nyu40_ply(path):
    header = ("ply\nformat binary_little_endian 1.0\nelement vertex 6\nproperty float x\nproperty float y\n"
              "property float z\nproperty ushort label\nend_header\n").encode()
    path.write_bytes(header + b"".join(struct.pack("<fffH", i, 0, 0, v) for i, v in enumerate(NYU40)))
    return path


def test_cli_info_and_score_name_the_fitting_map(tmp_path, capsys):
    ply = _nyu40_ply(tmp_path / "scene_vh_clean_2.labels.ply")
    assert main(["info", str(ply)]) == 0
    assert "no --label-map given; these look like NYU40 ids: try --label-map scannet" in capsys.readouterr().out
    assert main(["info", str(ply), "--label-map", "semantickitti"]) == 0
    assert "not in label map semantickitti; these look like NYU40 ids" in capsys.readouterr().out
    gt = write_labels(tmp_path / "gt.label", np.array(NYU40))
    assert main(["score", str(gt), str(gt), "--label-map", "semantickitti", "--out", str(tmp_path / "s")]) == 2
    assert "try --label-map scannet" in capsys.readouterr().err
