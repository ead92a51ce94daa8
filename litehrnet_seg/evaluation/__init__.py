"""Pose evaluation: COCO keypoint AP (``CocoMetric``), MPII PCKh
(``MpiiPCKAccuracy``) and OKS-NMS, registered in mmseg's ``METRICS``."""

from .functional import oks_iou, oks_nms
from .metrics import CocoMetric, MpiiPCKAccuracy, TaskFilteredMetric

__all__ = [
    'CocoMetric',
    'MpiiPCKAccuracy',
    'TaskFilteredMetric',
    'oks_iou',
    'oks_nms',
]
