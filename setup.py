"""Build of pcseg's compiled extension ``pcseg._C`` (C++ CPU kernels, CUDA kernels where possible).

Every ``cuda_ext/<op>/*.cpp`` goes into one extension; ``cuda_ext/<op>/*.cu`` joins it when CUDA
is built. Environment variables:

- ``PCSEG_NO_EXTENSION=1``: skip the extension entirely (pure-Python install; ops fall back to
  their PyTorch references).
- ``PCSEG_WITH_CUDA=1`` / ``=0``: force / disable the CUDA kernels. By default they are built when
  torch itself has CUDA (``torch.version.cuda``) and nvcc is found (``CUDA_HOME``).
- ``TORCH_CUDA_ARCH_LIST``: GPU architectures to compile for (torch's own handling).
- ``PCSEG_BUILD_DIR``: where object files are kept between builds (default
  ``build/objects-<python tag>``; ``PCSEG_BUILD_DIR=`` empty lets setuptools choose, i.e. a
  temporary folder for editable installs).

Incremental builds: object files live in one persistent folder and ninja recompiles only the
sources (and headers) that changed, so a second ``pip install --no-build-isolation -e .`` with no
source change only relinks the extension (seconds) instead of compiling everything again.
setuptools alone would compile editable installs in a fresh temporary folder every time.

Build here with ``pip install --no-build-isolation -e .``; on a machine without a package
registry ``python setup.py build_ext --inplace`` does the same.
"""

from __future__ import annotations

import glob
import os
import sys

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _cuda_wanted(torch_version_cuda, cuda_home) -> bool:
    forced = os.environ.get("PCSEG_WITH_CUDA")
    if forced is not None:
        return forced.strip() not in ("0", "", "false", "no")
    return bool(torch_version_cuda) and cuda_home is not None


def _extensions():
    if os.environ.get("PCSEG_NO_EXTENSION") == "1":
        return [], {}
    import torch
    from torch.utils import cpp_extension

    # Relative paths: setuptools rejects absolute source paths for in-tree builds.
    cpp_sources = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "cuda_ext", "*", "*.cpp")))
    cu_sources = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "cuda_ext", "*", "*.cu")))
    with_cuda = _cuda_wanted(torch.version.cuda, cpp_extension.CUDA_HOME)

    cxx_flags = ["-O3", "-std=c++17", "-fopenmp"]
    extra_compile_args = {"cxx": cxx_flags}
    define_macros = []
    if with_cuda:
        extension_class = cpp_extension.CUDAExtension
        sources = cpp_sources + cu_sources
        define_macros.append(("PCSEG_WITH_CUDA", "1"))
        extra_compile_args["nvcc"] = ["-O3", "-std=c++17", "--expt-relaxed-constexpr"]
    else:
        extension_class = cpp_extension.CppExtension
        sources = cpp_sources

    extension = extension_class(
        name="pcseg._C",
        sources=sources,
        include_dirs=[os.path.join(ROOT, "cuda_ext")],
        define_macros=define_macros,
        extra_compile_args=extra_compile_args,
        extra_link_args=["-fopenmp"],
    )
    return [extension], {"build_ext": _persistent_build_ext(cpp_extension.BuildExtension)}


def object_dir() -> str | None:
    """The persistent folder for object files, or None to let setuptools choose."""
    chosen = os.environ.get("PCSEG_BUILD_DIR")
    if chosen is not None:
        return os.path.abspath(chosen) if chosen.strip() else None
    return os.path.join(ROOT, "build", f"objects-{sys.implementation.cache_tag}")


def _persistent_build_ext(base):
    """``base`` (torch's BuildExtension) with ninja and a build folder that outlives the build."""

    class PersistentBuildExt(base):
        def __init__(self, *args, **kwargs):
            kwargs["use_ninja"] = True
            super().__init__(*args, **kwargs)

        def finalize_options(self):
            super().finalize_options()
            folder = object_dir()
            if folder is not None:
                self.build_temp = folder

    return PersistentBuildExt


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
