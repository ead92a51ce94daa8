from .pose_data_sample import PoseDataSample
from .task import TASKS, infer_task

__all__ = ['PoseDataSample', 'TASKS', 'infer_task']
