"""Readers and writers: files on disk -> :class:`PointCloud` (numpy)."""

from pcseg.io.pointcloud import PointCloud

__all__ = ["PointCloud"]
