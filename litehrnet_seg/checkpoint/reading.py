"""Read a checkpoint file, naming the file in every failure.

mmengine's loader raises whatever ``torch.load`` raises ("PytorchStreamReader
failed reading zip archive", a bare ``EOFError``...), which names neither the
file nor the cause. :func:`read_checkpoint` checks the cheap causes first
(missing, a directory, empty) and wraps the rest.
"""

import os.path as osp
from collections import OrderedDict

from mmengine.runner import CheckpointLoader

# Schemes read by other mmengine backends: no local checks for those.
_REMOTE = ('http://', 'https://', 'open-mmlab://', 'openmmlab://', 's3://')


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read; the message names the file."""


def read_checkpoint(filename: str, map_location: str = 'cpu') -> dict:
    """Read a whole checkpoint (``state_dict``, ``meta``, ...).

    Args:
        filename (str): Local path, URL or ``open-mmlab://`` style name.
        map_location (str): Where to map tensors. Defaults to 'cpu'.

    Returns:
        dict: The checkpoint. A bare state dict comes back as is.

    Raises:
        CheckpointError: If the file is missing, a directory, empty,
            truncated, not a checkpoint or holds no state dict.
    """
    filename = str(filename)
    if not filename.startswith(_REMOTE):
        if osp.isdir(filename):
            raise CheckpointError(
                f'checkpoint {filename!r} is a directory; expected a '
                'checkpoint file (e.g. work_dirs/<name>/iter_1000.pth)'
            )
        if not osp.isfile(filename):
            raise CheckpointError(f'checkpoint {filename!r} does not exist')
        if osp.getsize(filename) == 0:
            raise CheckpointError(
                f'checkpoint {filename!r} is empty (0 bytes): an '
                'interrupted copy or save?'
            )
    try:
        checkpoint = CheckpointLoader.load_checkpoint(filename, map_location)
    except (EOFError, RuntimeError) as e:
        raise CheckpointError(
            f'checkpoint {filename!r} is truncated or not a PyTorch '
            f'checkpoint ({type(e).__name__}: {e})'
        ) from e
    except Exception as e:  # bad pickle, unsafe globals, backend errors
        raise CheckpointError(
            f'cannot read checkpoint {filename!r}: {type(e).__name__}: {e}'
        ) from e
    if not isinstance(checkpoint, dict) or not isinstance(
        checkpoint.get('state_dict', checkpoint), dict
    ):
        raise CheckpointError(
            f'checkpoint {filename!r} holds no state dict (got '
            f'{type(checkpoint).__name__})'
        )
    return checkpoint


def state_dict_of(checkpoint: dict, prefix: str | None = None) -> OrderedDict:
    """The state dict of a checkpoint, without DDP's ``module.`` prefix.

    Args:
        checkpoint (dict): As returned by :func:`read_checkpoint`.
        prefix (str, optional): Keep only keys under this prefix (e.g.
            ``'backbone.'``) and strip it. Defaults to None (all keys).

    Returns:
        OrderedDict: The state dict.
    """
    state = checkpoint.get('state_dict', checkpoint)
    state = OrderedDict(
        (k[7:] if k.startswith('module.') else k, v) for k, v in state.items()
    )
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state = OrderedDict(
            (k[len(prefix) :], v)
            for k, v in state.items()
            if k.startswith(prefix)
        )
    return state
