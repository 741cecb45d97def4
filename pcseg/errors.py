"""One exception family for everything pcseg reports about its inputs.

Catch :class:`PcsegError` to handle any of them; each also subclasses the builtin a caller
would expect (``ValueError`` for bad content, ``FileNotFoundError`` for missing files), so
generic handlers keep working. Messages always name the file or argument and the problem.
"""

from __future__ import annotations


class PcsegError(Exception):
    """Base class of every error pcseg raises on purpose."""


class PcsegValueError(PcsegError, ValueError):
    """An argument or a file's content is not what pcseg can work with."""


class PcsegFileNotFoundError(PcsegError, FileNotFoundError):
    """A path given to pcseg does not exist."""


class PointCloudFormatError(PcsegValueError):
    """A point-cloud, label or depth file is malformed (wrong size, dtype, fields, NaN...)."""


class ConfigError(PcsegValueError):
    """A config file has an unknown key, a wrong type, or a missing section."""


class CheckpointError(PcsegValueError):
    """A checkpoint is corrupt, foreign, or does not match the model or label map."""

