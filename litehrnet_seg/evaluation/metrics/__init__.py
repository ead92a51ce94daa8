from .coco_keypoint_metric import CocoMetric
from .mpii_pck_accuracy import MpiiPCKAccuracy
from .task_filtered_metric import TaskFilteredMetric

__all__ = ['CocoMetric', 'MpiiPCKAccuracy', 'TaskFilteredMetric']
