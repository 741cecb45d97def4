"""Lazy package attributes (PEP 562): a public name loads the submodule that defines it on first use.

Keeps ``import pcseg`` (and ``import pcseg.synth``) light: nothing heavy is imported until a
name that needs it is touched.
"""

from __future__ import annotations

import importlib


def lazy_attributes(package: str, lazy: dict[str, str], namespace: dict):
    """``(__getattr__, __dir__)`` for ``package``, whose names in ``lazy`` (name -> module) load on use.

    ``namespace`` is the package's ``globals()``: a loaded name is stored there, so later accesses
    do not come back here.
    """

    def __getattr__(name: str):
        if name in lazy:
            value = getattr(importlib.import_module(lazy[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(lazy))

    return __getattr__, __dir__
