"""Strict, explained checkpoint loading for one module.

mmengine's ``Pretrained`` initialisation loads with ``strict=False`` and
only logs what did not fit, so a checkpoint of another architecture half
loads and training silently starts from a broken model. These helpers
refuse that and say exactly which tensors do not fit.
"""

from collections import OrderedDict

import torch
from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader

_MAX_LISTED = 20  # mismatches listed in an error; the count is exact


def read_state_dict(
    filename: str, prefix: str | None = None, map_location: str = 'cpu'
) -> OrderedDict:
    """Read a state dict from a checkpoint file (any mmengine backend).

    Args:
        filename (str): Local path, URL or ``open-mmlab://`` style name.
        prefix (str, optional): Keep only keys under this prefix (e.g.
            ``'backbone.'``) and strip it. Defaults to None (all keys).
        map_location (str): Where to map tensors. Defaults to 'cpu'.

    Returns:
        OrderedDict: The (prefix-stripped) state dict.
    """
    try:
        checkpoint = CheckpointLoader.load_checkpoint(filename, map_location)
    except FileNotFoundError:
        raise
    except Exception as e:  # truncated zip, bad pickle, unsafe globals...
        raise RuntimeError(
            f'cannot read checkpoint {filename!r}: {type(e).__name__}: {e}'
        ) from e
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict):
        raise RuntimeError(f'checkpoint {filename!r} holds no state dict')
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
        if not state:
            raise RuntimeError(
                f'checkpoint {filename!r} has no keys under prefix {prefix!r}'
            )
    return state


def load_state_dict_checked(
    module: torch.nn.Module, state: dict, source: str = 'checkpoint'
) -> None:
    """Load ``state`` into ``module``, refusing anything that does not fit.

    Shape mismatches and missing keys raise ``ValueError`` listing every
    offending tensor (typically: a checkpoint of another arch). Unexpected
    keys (e.g. an IterativeHead the module does not use) only warn.

    Args:
        module (nn.Module): Module to load into.
        state (dict): State dict, keys relative to ``module``.
        source (str): Name of the checkpoint, for messages.
    """
    own = module.state_dict()
    mismatched = [
        f'  {k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    problems = []
    if mismatched:
        shown = mismatched[:_MAX_LISTED]
        if len(mismatched) > _MAX_LISTED:
            shown.append(f'  ... and {len(mismatched) - _MAX_LISTED} more')
        problems.append(
            f'{len(mismatched)} shape mismatch(es):\n' + '\n'.join(shown)
        )
    if missing:
        problems.append(
            f'{len(missing)} missing key(s): '
            + ', '.join(missing[:10])
            + (' ...' if len(missing) > 10 else '')
        )
    if problems:
        raise ValueError(
            f'{source} does not fit {type(module).__name__} (another '
            'architecture or variant?):\n' + '\n'.join(problems)
        )
    if unexpected:
        print_log(
            f'{source}: ignoring {len(unexpected)} unexpected key(s): '
            + ', '.join(unexpected[:10]),
            logger='current',
            level=30,
        )
    module.load_state_dict(state, strict=False)
