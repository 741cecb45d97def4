"""Files shipped inside the package (label maps, the sample scan, bundled checkpoints).

Every runtime file lives under the ``pcseg`` package and is found with :mod:`importlib.resources`,
so a wheel or a plain ``pip install .`` works as well as an editable checkout: nothing is looked
up relative to the source tree.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_file(*parts: str) -> Path:
    """Path of ``pcseg/<parts...>`` as installed, e.g. ``package_file("data", "sample_scan.bin")``.

    pcseg is installed as plain files (wheel, sdist, editable), so the resource is a real file
    on disk; the path may not exist (callers report that with their own message).
    """
    resource = resources.files("pcseg").joinpath(*parts)
    return Path(str(resource))


def label_map_file(name: str) -> Path:
    """Path of the built-in label map YAML ``name`` (``semantickitti``, ``s3dis``, ...)."""
    return package_file("data", "label_maps", f"{name}.yaml")
