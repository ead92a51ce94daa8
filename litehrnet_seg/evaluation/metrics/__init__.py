from .coco_keypoint_metric import CocoMetric
from .mpii_pckh_metric import MpiiPCKAccuracy

__all__ = ['CocoMetric', 'MpiiPCKAccuracy']
