from .atomic_backend import (
    AtomicLocalBackend,
    CheckpointWriteError,
    atomic_write_bytes,
    remove_stale_temp_files,
)
from .bad_sample_report_hook import BadSampleReportHook
from .nonfinite_guard_optim_wrapper import NonFiniteGuardOptimWrapper
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .pose_visualization_hook import PoseVisualizationHook
from .resume_checkpoint import ResumeError, find_resume_checkpoint
from .rng_state import get_rng_state, set_rng_state
from .strict_runner import StrictLoadRunner
from .train_loops import SafeEpochBasedTrainLoop, SafeIterBasedTrainLoop

__all__ = [
    'AtomicLocalBackend',
    'BadSampleReportHook',
    'CheckpointWriteError',
    'NonFiniteGuardOptimWrapper',
    'NonFiniteLossError',
    'NonFiniteLossHook',
    'PoseVisualizationHook',
    'ResumeError',
    'SafeEpochBasedTrainLoop',
    'SafeIterBasedTrainLoop',
    'StrictLoadRunner',
    'atomic_write_bytes',
    'find_resume_checkpoint',
    'get_rng_state',
    'remove_stale_temp_files',
    'set_rng_state',
]
