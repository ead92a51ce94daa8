from .heatmap_head import HeatmapHead
from .keypoint_mse_loss import KeypointMSELoss
from .topdown_pose_estimator import TopdownPoseEstimator

__all__ = ['HeatmapHead', 'KeypointMSELoss', 'TopdownPoseEstimator']
