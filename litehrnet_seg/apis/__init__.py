"""Inference: seg and pose inferencers, inputs, the CLI's runner.

Models are built by :func:`litehrnet_seg.checkpoint.build_model` (strict
loading, seg or pose); the inferencers run them on the optimised path of
:func:`optimize_for_inference` by default.
"""

from ..checkpoint import build_model
from .fast_path import optimize_for_inference
from .inputs import (
    ImageReadError,
    InputError,
    InputItem,
    VideoSource,
    iter_images,
    list_images,
    output_names,
    read_image,
    resolve_input,
)
from .pose_inferencer import PoseInferencer, check_boxes, load_boxes
from .runner import process, run_batches
from .seg_inferencer import SegInferencer, label_map

__all__ = [
    'ImageReadError',
    'InputError',
    'InputItem',
    'PoseInferencer',
    'SegInferencer',
    'VideoSource',
    'build_model',
    'check_boxes',
    'iter_images',
    'label_map',
    'list_images',
    'load_boxes',
    'optimize_for_inference',
    'output_names',
    'process',
    'read_image',
    'resolve_input',
    'run_batches',
]
