from .checkpoint_tools import (
    CheckpointMismatchError,
    ConversionReport,
    convert_checkpoint,
    extract_backbone,
)
from .pose_inference import inference_topdown, init_model

__all__ = [
    'CheckpointMismatchError',
    'ConversionReport',
    'convert_checkpoint',
    'extract_backbone',
    'inference_topdown',
    'init_model',
]
