"""Panoptic segmentation: a voxel segmentation model plus an instance head.

The instance head reads the backbone's last decoder features and predicts, per voxel, the offset
from the voxel's mean point to the centre of the instance it belongs to (Panoptic-PolarNet and
DS-Net style centre voting). A point's predicted centre is its voxel's mean plus that offset, so
the offset returned per point is ``centre - xyz``. Points predicted as a thing class are then
grouped by :func:`pcseg.models.clustering.cluster_centres` into instances.

Any voxel model can be the backbone if it provides ``voxelize(xyz, feats, offsets) ->
(SparseTensor, inverse)``, ``features_sparse(SparseTensor) -> SparseTensor`` (stride-1 features),
``classifier`` (features -> logits) and ``feature_channels``, as :class:`pcseg.models.MinkUNet`
does.
"""

from __future__ import annotations

import torch
from torch import nn

from pcseg.errors import PcsegValueError
from pcseg.models.inputs import check_inputs
from pcseg.models.clustering import cluster_centres
from pcseg.models.minkunet import MinkUNet

SEMANTICKITTI_THING_IDS = (1, 2, 3, 4, 5, 6, 7, 8)  # car .. motorcyclist in the builtin semantickitti map
BACKBONE_API = ("voxelize", "features_sparse", "classifier", "feature_channels")


class PanopticModel(nn.Module):
    """A voxel model with an instance-centre head.

    Args:
        backbone: a voxel segmentation model with the :data:`BACKBONE_API` attributes.
        things: train ids of the thing classes (the classes that have instances).
        head_channels: hidden width of the two-layer offset MLP.
        cluster_size: cell edge (metres) of the centre clustering.

    ``forward_ragged(xyz, feats, offsets) -> logits (N, num_classes)`` follows the model protocol
    (the head is not run); ``forward_panoptic`` also returns the offsets; :meth:`instances` turns
    offsets and classes into instance ids.
    """

    def __init__(self, backbone: nn.Module, things=SEMANTICKITTI_THING_IDS, head_channels: int = 32,
                 cluster_size: float = 0.5):
        super().__init__()
        missing = [a for a in BACKBONE_API if not hasattr(backbone, a)]
        if missing:
            raise PcsegValueError(f"PanopticModel: backbone {type(backbone).__name__} lacks {', '.join(missing)} "
                                  "(a voxel model such as MinkUNet is needed)")
        things = sorted({int(t) for t in things})
        if not things or things[0] < 0 or things[-1] >= backbone.num_classes:
            raise PcsegValueError(f"PanopticModel: things must be train ids in 0..{backbone.num_classes - 1}, got {things}")
        if not cluster_size > 0 or not head_channels >= 1:
            raise PcsegValueError(f"PanopticModel: cluster_size and head_channels must be > 0, got {cluster_size}, "
                                  f"{head_channels}")
        self.backbone = backbone
        self.num_classes = backbone.num_classes
        self.in_channels = backbone.in_channels
        self.things = tuple(things)
        self.cluster_size = float(cluster_size)
        width = int(backbone.feature_channels)
        self.offset_head = nn.Sequential(nn.Linear(width, head_channels), nn.ReLU(inplace=True),
                                         nn.Linear(head_channels, 3))

    def forward_ragged(self, xyz: torch.Tensor, feats: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for every point (docs/conventions.md); the head is not run."""
        return self.backbone.forward_ragged(xyz, feats, offsets)

    def forward_panoptic(self, xyz: torch.Tensor, feats: torch.Tensor, offsets: torch.Tensor):
        """``(logits (N, num_classes), offsets (N, 3))``: class scores and, per point, the vector
        (metres) from the point to its predicted instance centre."""
        from pcseg.ops import voxel_reduce

        check_inputs(self, xyz, feats)
        x, inverse = self.backbone.voxelize(xyz, feats, offsets)
        features = self.backbone.features_sparse(x).feats
        logits = self.backbone.classifier(features)
        # positions stay float32 under autocast: bf16 would round 50 m to 0.25 m
        voxel_mean = voxel_reduce(xyz.float(), inverse, features.shape[0], mode="mean")
        centre = voxel_mean + self.offset_head(features).float()
        return logits[inverse], centre[inverse] - xyz.float()

    def forward(self, xyz, feats, offsets):
        return self.forward_ragged(xyz, feats, offsets)

    @torch.no_grad()
    def instances(self, xyz: torch.Tensor, point_offsets: torch.Tensor, semantic: torch.Tensor,
                  offsets: torch.Tensor) -> torch.Tensor:
        """int64 (N,) instance ids (0 = not a thing, 1.. per cloud) from predicted offsets
        (N, 3) and predicted train ids (N,) of a ragged batch."""
        centres = xyz.float() + point_offsets.float()
        return cluster_centres(centres, semantic, offsets, self.things, self.cluster_size)


class PanopticMinkUNet(PanopticModel):
    """:class:`pcseg.models.MinkUNet` with an instance-centre head; the arguments are the
    MinkUNet's (``num_classes``, ``in_channels``, ``voxel_size``, ``layers``, ``width``) and the
    head's (``things``, ``head_channels``, ``cluster_size``)."""

    def __init__(self, num_classes: int, in_channels: int, voxel_size: float = 0.05, layers="18",
                 width: float = 1.0, things=SEMANTICKITTI_THING_IDS, head_channels: int = 32,
                 cluster_size: float = 0.5):
        super().__init__(MinkUNet(num_classes, in_channels, voxel_size, layers, width), things, head_channels,
                         cluster_size)
        self.voxel_size = self.backbone.voxel_size
