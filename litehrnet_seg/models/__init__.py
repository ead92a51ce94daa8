from .backbones import LiteHRNet
from .decode_heads import ProjectFirstConcatHead
from .multitask import SegPoseMultiTaskModel
from .multitask_data_preprocessor import MultiTaskDataPreprocessor
from .pose import HeatmapHead, KeypointMSELoss, TopdownPoseEstimator

__all__ = [
    'HeatmapHead',
    'KeypointMSELoss',
    'LiteHRNet',
    'MultiTaskDataPreprocessor',
    'ProjectFirstConcatHead',
    'SegPoseMultiTaskModel',
    'TopdownPoseEstimator',
]
