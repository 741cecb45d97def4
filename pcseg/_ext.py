"""Loading of the compiled extension ``pcseg._C`` (C++ CPU kernels, CUDA kernels where built).

The extension registers its operators under ``torch.ops.pcseg`` through ``TORCH_LIBRARY``. It is
loaded on first use, never at ``import pcseg``. When it is not built, every op falls back to its
pure-PyTorch reference and one warning says so.
"""

from __future__ import annotations

import functools
import os
import warnings

_state: dict = {"tried": False, "loaded": False, "error": None}


def extension_loaded() -> bool:
    """True when ``pcseg._C`` is importable and its operators are registered.

    Set ``PCSEG_DISABLE_EXTENSION=1`` to force the pure-PyTorch references (useful for tests).
    """
    if os.environ.get("PCSEG_DISABLE_EXTENSION") == "1":
        return False
    if not _state["tried"]:
        _state["tried"] = True
        try:
            import torch  # noqa: F401  (loads libc10/libtorch, which _C links against)

            from pcseg import _C  # noqa: F401  (registers torch.ops.pcseg.*)

            _state["loaded"] = True
        except ImportError as exc:  # not built: fall back to the references
            _state["error"] = exc
            warnings.warn(
                "pcseg's compiled extension is not built (" + str(exc) + "); using the slower "
                "pure-PyTorch reference ops. Build it with `pip install --no-build-isolation -e .`.",
                RuntimeWarning,
                stacklevel=3,
            )
    return _state["loaded"]


def has_compiled_kernel(op_name: str, device_type: str) -> bool:
    """True when ``torch.ops.pcseg.<op_name>`` is built with a kernel for ``device_type``.

    A CPU-only build of the extension has no CUDA kernels: CUDA tensors then take the
    pure-PyTorch path instead of failing in the dispatcher.
    """
    if device_type not in ("cpu", "cuda") or not extension_loaded():
        return False
    return _ask_dispatcher(op_name, device_type)


# The answer cannot change once the extension is loaded; asking the dispatcher costs more than a
# small op (about 15 us), so it is asked once per op and device.
@functools.cache
def _ask_dispatcher(op_name: str, device_type: str) -> bool:
    import torch  # already imported by extension_loaded()

    if not hasattr(torch.ops.pcseg, op_name):
        return False
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(f"pcseg::{op_name}", device_type.upper())
    except (AttributeError, RuntimeError):  # private API moved: trust the CPU build only
        return device_type == "cpu"
