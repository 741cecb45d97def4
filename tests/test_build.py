"""The extension builds, loads, registers its operators, and the references take over without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def test_extension_loads_and_registers_ops():
    from pcseg._ext import extension_loaded

    if not extension_loaded():
        pytest.skip("pcseg._C is not built in this checkout")
    assert hasattr(torch.ops.pcseg, "voxelize")
    assert torch._C._dispatch_has_kernel_for_dispatch_key("pcseg::voxelize", "CPU")


def test_import_pcseg_does_not_load_extension_or_cuda():
    code = (
        "import sys, pcseg, pcseg.ops\n"
        "assert 'pcseg._C' not in sys.modules, 'extension loaded at import'\n"
        "assert 'open3d' not in sys.modules\n"
        "import torch; assert not torch.cuda.is_initialized()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_reference_fallback_when_extension_disabled():
    code = (
        "import warnings, torch\n"
        "from pcseg.ops import voxelize\n"
        "with warnings.catch_warnings(record=True):\n"
        "    warnings.simplefilter('always')\n"
        "    coords, inverse, counts = voxelize(torch.tensor([[0.1, 0.1, 0.1], [0.2, 0.1, 0.1], [1.5, 0, 0]]), 1.0)\n"
        "assert coords.tolist() == [[0, 0, 0], [1, 0, 0]], coords\n"
        "assert inverse.tolist() == [0, 0, 1] and counts.tolist() == [2, 1]\n"
        "import sys; assert 'pcseg._C' not in sys.modules\n"
    )
    env = dict(os.environ, PCSEG_DISABLE_EXTENSION="1")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env)


def test_setup_collects_every_op_folder():
    sources = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "cuda_ext").glob("*/*.cpp"))
    assert "cuda_ext/common/module.cpp" in sources
    assert "cuda_ext/voxelize/voxelize.cpp" in sources


def test_cuda_sources_use_the_compat_header_only():
    # CUDA-only torch headers must stay behind cuda_compat.cuh, or .ci/compile_cuda breaks here.
    for source in (REPO / "cuda_ext").glob("*/*.cu"):
        text = source.read_text()
        assert "ATen/cuda/" not in text and "c10/cuda/" not in text, source


def test_extension_loads_in_a_fresh_process_before_torch_is_imported():
    """``extension_loaded()`` must import torch itself: _C links against libc10/libtorch."""
    import subprocess
    import sys

    from pcseg._ext import extension_loaded

    if not extension_loaded():
        pytest.skip("extension not built")
    code = "from pcseg._ext import extension_loaded; assert extension_loaded()"
    subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code], check=True)
