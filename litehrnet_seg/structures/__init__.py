from .pose_data_sample import PoseDataSample

__all__ = ['PoseDataSample']
