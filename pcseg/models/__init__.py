"""pcseg.models"""

from pcseg.models.minkunet import MinkUNet, MinkUNet18, MinkUNet34

__all__ = ["MinkUNet", "MinkUNet18", "MinkUNet34"]

from pcseg.models.pointnet2 import PointNet2MSG, PointNet2SSG  # noqa: E402

__all__ += ["PointNet2SSG", "PointNet2MSG"]

from pcseg.models.spvcnn import SPVCNN  # noqa: E402

__all__ += ["SPVCNN"]

from pcseg.models.ptv3 import PointTransformerV3  # noqa: E402

__all__ += ["PointTransformerV3"]

from pcseg.models.realtime import FastVoxelNet  # noqa: E402

__all__ += ["FastVoxelNet"]

from pcseg.models.panoptic import PanopticMinkUNet, PanopticModel  # noqa: E402

__all__ += ["PanopticModel", "PanopticMinkUNet"]
