from .backbones import LiteHRNet
from .pose import HeatmapHead, KeypointMSELoss, TopdownPoseEstimator

__all__ = [
    'HeatmapHead',
    'KeypointMSELoss',
    'LiteHRNet',
    'TopdownPoseEstimator',
]
