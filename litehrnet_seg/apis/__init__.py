from ..checkpoint import (
    CheckpointMismatchError,
    convert_checkpoint,
    extract_backbone,
)
from .input_sources import ImageReadError, InputError, read_image
from .pose_inference import inference_topdown, init_model
from .seg_inference import (
    configure_slide_inference,
    dataset_meta_from_config,
    inference_segmentor,
    init_segmentor,
    label_map,
    render_segmentation,
    task_of_config,
)

__all__ = [
    'CheckpointMismatchError',
    'ImageReadError',
    'InputError',
    'configure_slide_inference',
    'convert_checkpoint',
    'dataset_meta_from_config',
    'extract_backbone',
    'inference_segmentor',
    'inference_topdown',
    'init_model',
    'init_segmentor',
    'label_map',
    'read_image',
    'render_segmentation',
    'task_of_config',
]
