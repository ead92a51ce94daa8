"""Snapshot and restore of the global random generators."""

import logging
import random

import numpy as np
import torch

__all__ = ['get_rng_state', 'set_rng_state']


def get_rng_state() -> dict:
    """Python, NumPy and torch (CPU and CUDA) random states.

    Only plain types and tensors, so a checkpoint holding it still loads
    with ``torch.load(weights_only=True)``.

    Returns:
        dict: State for :func:`set_rng_state`.
    """
    name, key, pos, has_gauss, gauss = np.random.get_state()
    state = dict(
        python=random.getstate(),
        numpy=dict(
            name=name,
            key=torch.from_numpy(key.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            gauss=float(gauss),
        ),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, logger: logging.Logger | None = None) -> None:
    """Restore a snapshot taken by :func:`get_rng_state`.

    Args:
        state (dict): The snapshot.
        logger (logging.Logger, optional): Where to warn if the CUDA state
            cannot be restored (another number of GPUs). Defaults to None.
    """
    random.setstate(state['python'])
    np_state = state['numpy']
    np.random.set_state(
        (
            np_state['name'],
            np_state['key'].numpy().astype(np.uint32),
            np_state['pos'],
            np_state['has_gauss'],
            np_state['gauss'],
        )
    )
    torch.set_rng_state(state['torch'])
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        elif logger is not None:
            logger.warning(
                f'The checkpoint holds the CUDA random state of {len(cuda)} '
                f'GPU(s) but {torch.cuda.device_count()} are visible; CUDA '
                'random numbers will differ from the interrupted run.'
            )
