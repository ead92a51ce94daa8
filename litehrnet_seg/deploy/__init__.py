"""Deployment: fast inference, ONNX export."""

from .inference_optimizer import (
    OPTIMIZATION_STEPS,
    InferenceModel,
    fold_batch_norms,
    optimize,
    reorder_concat_heads,
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
    'EXPORTERS',
    'OPTIMIZATION_STEPS',
    'InferenceModel',
    'ParityError',
    'ProjectThenUpsampleHead',
    'TensorModel',
    'check_parity',
    'export_onnx',
    'fold_batch_norms',
    'onnxruntime_session',
    'optimize',
    'parity_errors',
    'reorder_concat_heads',
    'run_session',
    'time_calls',
]
