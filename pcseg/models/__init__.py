"""pcseg.models"""

from pcseg.models.minkunet import MinkUNet, MinkUNet18, MinkUNet34

__all__ = ["MinkUNet", "MinkUNet18", "MinkUNet34"]

from pcseg.models.pointnet2 import PointNet2MSG, PointNet2SSG  # noqa: E402

__all__ += ["PointNet2SSG", "PointNet2MSG"]
