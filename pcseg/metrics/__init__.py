"""Scores of a segmentation against ground truth: confusion matrix, IoU, boundary IoU, plots,
panoptic quality.

``ConfusionMatrix`` is the one object every evaluation accumulates; see docs/metrics.md for the
exact definitions and how they relate to the official SemanticKITTI evaluator.
"""

from pcseg.metrics.boundary import boundary_confusion, boundary_mask
from pcseg.metrics.confusion import ConfusionMatrix, merge_all
from pcseg.metrics.panoptic import PanopticQuality, thing_classes
from pcseg.metrics.plots import plot_class_iou, plot_confusion_matrix

__all__ = [
    "ConfusionMatrix",
    "merge_all",
    "PanopticQuality",
    "thing_classes",
    "boundary_mask",
    "boundary_confusion",
    "plot_confusion_matrix",
    "plot_class_iou",
]
