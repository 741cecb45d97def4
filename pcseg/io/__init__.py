"""Readers and writers: files on disk -> :class:`PointCloud` (numpy), label maps.

Light to import: open3d, laspy, h5py and image libraries load only inside the readers that
need them.
"""

from pcseg.io.depth import read_depth
from pcseg.io.labelmap import LabelMap
from pcseg.io.labels import read_labels, write_labels
from pcseg.io.pointcloud import PointCloud
from pcseg.io.readers import read_points
from pcseg.io.writers import write_points

__all__ = ["PointCloud", "read_points", "read_labels", "write_labels", "read_depth", "write_points", "LabelMap"]
