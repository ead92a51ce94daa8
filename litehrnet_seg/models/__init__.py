from .backbones import LiteHRNet
from .multitask import (
    MultiTaskDataPreprocessor,
    MultiTaskDataset,
    SegPoseMultiTaskModel,
    TaskBatchSampler,
    TaskFilteredMetric,
    TaskSequentialBatchSampler,
)
from .pose import HeatmapHead, KeypointMSELoss, TopdownPoseEstimator

__all__ = [
    'HeatmapHead',
    'KeypointMSELoss',
    'LiteHRNet',
    'MultiTaskDataPreprocessor',
    'MultiTaskDataset',
    'SegPoseMultiTaskModel',
    'TaskBatchSampler',
    'TaskFilteredMetric',
    'TaskSequentialBatchSampler',
    'TopdownPoseEstimator',
]
