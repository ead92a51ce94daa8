from .pose_visualization_hook import PoseVisualizationHook

__all__ = ['PoseVisualizationHook']
