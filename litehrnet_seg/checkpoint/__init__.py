"""Checkpoints: strict loading, the one model builder, conversion.

Every entry point of the project loads weights through
:func:`load_checkpoint` (strict, known renamings, explicit opt-ins) and
builds models through :func:`build_model`.
"""

from .conversion import (
    convert_checkpoint,
    extract_backbone,
    infer_arch,
    infer_task,
)
from .key_map import (
    KEY_RENAMES,
    CheckpointMismatchError,
    MatchReport,
    map_state_dict,
)
from .loading import (
    build_model,
    dataset_meta_from_config,
    load_checkpoint,
    load_config,
    resolve_config_path,
)
from .reading import CheckpointError, read_checkpoint, state_dict_of

__all__ = [
    'KEY_RENAMES',
    'CheckpointError',
    'CheckpointMismatchError',
    'MatchReport',
    'build_model',
    'convert_checkpoint',
    'dataset_meta_from_config',
    'extract_backbone',
    'infer_arch',
    'infer_task',
    'load_checkpoint',
    'load_config',
    'map_state_dict',
    'read_checkpoint',
    'resolve_config_path',
    'state_dict_of',
]
