from .atomic_checkpoint import (
    AtomicCheckpointHook,
    AtomicLocalBackend,
    atomic_write_bytes,
    checkpoint_problem,
)
from .exact_resume_hook import ExactResumeHook
from .nonfinite_guard_optim_wrapper import NonFiniteGuardOptimWrapper
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .pose_visualization_hook import PoseVisualizationHook
from .preemption_hook import PreemptionCheckpointHook

__all__ = [
    'AtomicCheckpointHook',
    'AtomicLocalBackend',
    'ExactResumeHook',
    'NonFiniteGuardOptimWrapper',
    'NonFiniteLossError',
    'NonFiniteLossHook',
    'PoseVisualizationHook',
    'PreemptionCheckpointHook',
    'atomic_write_bytes',
    'checkpoint_problem',
]
