"""Deployment: fast inference, ONNX export."""

from .calibration import CalibrationReader, calibration_images
from .inference_optimizer import (
    DEFAULT_STEPS,
    OPTIMIZATION_STEPS,
    InferenceModel,
    fold_batch_norms,
    optimize,
    reorder_concat_heads,
    sum_fuses_coarse_first,
)
from .int8 import (
    argmax_agreement,
    int8_op_count,
    output_nodes,
    quantize_int8,
    weighting_nodes,
)
from .onnx_export import (
    EXPORTERS,
    ParityError,
    check_parity,
    export_onnx,
    onnxruntime_session,
    parity_errors,
    run_session,
)
from .project_then_upsample_head import ProjectThenUpsampleHead
from .tensor_model import TensorModel
from .timing import time_calls

__all__ = [
    'DEFAULT_STEPS',
    'EXPORTERS',
    'CalibrationReader',
    'OPTIMIZATION_STEPS',
    'InferenceModel',
    'ParityError',
    'ProjectThenUpsampleHead',
    'TensorModel',
    'argmax_agreement',
    'calibration_images',
    'check_parity',
    'export_onnx',
    'fold_batch_norms',
    'int8_op_count',
    'onnxruntime_session',
    'optimize',
    'output_nodes',
    'parity_errors',
    'quantize_int8',
    'reorder_concat_heads',
    'run_session',
    'sum_fuses_coarse_first',
    'time_calls',
    'weighting_nodes',
]
