from .pose_inference import inference_topdown, init_model

__all__ = ['inference_topdown', 'init_model']
