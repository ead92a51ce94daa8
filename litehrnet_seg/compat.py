"""Compatibility layer: mmcv-lite and torch >= 2.6 safe checkpoint loading.

Everything that works around a dependency lives here, so that the rest of
the package is written against the libraries' documented APIs.

* mmcv-lite ships no compiled ops (``mmcv._ext``), yet mmsegmentation 1.2.2
  imports ``point_sample`` and ``sigmoid_focal_loss`` from ``mmcv.ops`` at
  import time. When the compiled extension is missing we register a small
  ``mmcv.ops`` module holding pure-PyTorch versions of those two ops; every
  other op name resolves to a placeholder that raises a clear error when it
  is used. With full mmcv installed nothing is touched.
* torch >= 2.6 loads checkpoints with ``weights_only=True``. mmengine 0.10
  checkpoints hold a few plain-data objects (``HistoryBuffer`` in the
  message hub, numpy arrays and scalars in ``meta``), which we add to
  torch's allowlist of safe globals. Safe loading stays on: arbitrary code
  in a checkpoint is still refused.

This module imports no other module of the package: the start-up hook
(``litehrnet_seg_startup``) loads it on its own, before the package, when
a script imports mmseg first (mmseg's tools). Keep it that way.
"""

import importlib.util
import os.path as osp
import pickle
import sys
import types

import torch
import torch.nn.functional as F

__all__ = [
    'MissingCompiledOp',
    'install_mmcv_ops_fallback',
    'register_safe_checkpoint_globals',
    'sigmoid_focal_loss',
]


class MissingCompiledOp:
    """Stand-in for a compiled mmcv op that mmcv-lite does not provide.

    Importing it works (so that mmseg modules which merely reference it can
    be imported); calling or instantiating it raises ``RuntimeError``.

    Args:
        name (str): Name of the op in ``mmcv.ops``.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            f'mmcv.ops.{self.name} needs full mmcv (compiled ops), but only '
            'mmcv-lite is installed. Install mmcv>=2.0.0rc4,<2.2.0 with its '
            'CUDA/C++ ops, e.g. `pip install mmcv==2.1.0` (source build) or '
            'a wheel from https://download.openmmlab.com/mmcv/dist/.'
        )

    def __repr__(self) -> str:
        return f'MissingCompiledOp({self.name!r})'


def sigmoid_focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    alpha: float = 0.25,
    weight: torch.Tensor | None = None,
    reduction: str = 'mean',
) -> torch.Tensor:
    """Pure-PyTorch equivalent of ``mmcv.ops.sigmoid_focal_loss``.

    Focal loss (Lin et al., https://arxiv.org/abs/1708.02002) on sigmoid
    logits with integer class targets; a target equal to the number of
    classes is background (negative for every class), as in mmcv's kernel.

    Args:
        input (Tensor): Logits of shape (N, C).
        target (Tensor): Class indices of shape (N,), in [0, C].
        gamma (float): Focusing parameter. Defaults to 2.0.
        alpha (float): Balance of positives. Defaults to 0.25.
        weight (Tensor, optional): Per-class weights of shape (C,), applied
            by each sample's target class, as in mmcv. Defaults to None.
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.

    Returns:
        Tensor: The loss, (N, C) for 'none', else a scalar.
    """
    num_classes = input.size(1)
    one_hot = F.one_hot(target.long(), num_classes + 1)[:, :num_classes]
    one_hot = one_hot.to(input.dtype)
    prob = input.sigmoid()
    bce = F.binary_cross_entropy_with_logits(input, one_hot, reduction='none')
    p_t = prob * one_hot + (1 - prob) * (1 - one_hot)
    alpha_t = alpha * one_hot + (1 - alpha) * (1 - one_hot)
    loss = alpha_t * (1 - p_t).pow(gamma) * bce
    if weight is not None:
        per_sample = weight.new_ones(target.shape)
        foreground = target < num_classes
        per_sample[foreground] = weight[target[foreground].long()]
        loss = loss * per_sample[:, None]
    if reduction == 'none':
        return loss
    if reduction == 'sum':
        return loss.sum()
    if reduction == 'mean':  # mmcv divides by the number of samples only
        return loss.sum() / input.size(0)
    raise ValueError(
        f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}"
    )


class _LiteOpsModule(types.ModuleType):
    """``mmcv.ops`` for mmcv-lite: pure ops, placeholders for the rest."""

    def __getattr__(self, name: str):
        if name.startswith('_'):
            raise AttributeError(name)
        return MissingCompiledOp(name)


def _has_compiled_mmcv_ops() -> bool:
    return importlib.util.find_spec('mmcv._ext') is not None


def _load_pure_module(package_dir: str, name: str) -> types.ModuleType:
    """Load one pure-Python file of ``mmcv/ops`` without its package."""
    path = osp.join(package_dir, 'ops', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'mmcv.ops.{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def install_mmcv_ops_fallback() -> bool:
    """Provide ``mmcv.ops`` when only mmcv-lite is installed.

    Returns:
        bool: True if the fallback was installed, False if full mmcv (with
        compiled ops) is available or the fallback is already in place.
    """
    import mmcv

    current = sys.modules.get('mmcv.ops')
    if isinstance(current, _LiteOpsModule) or _has_compiled_mmcv_ops():
        return False
    ops = _LiteOpsModule('mmcv.ops', 'mmcv-lite fallback for mmcv.ops')
    # mmcv's point_sample is plain PyTorch (grid_sample): reuse its code.
    point_sample = _load_pure_module(
        osp.dirname(mmcv.__file__), 'point_sample'
    )
    ops.point_sample = point_sample.point_sample
    ops.bilinear_grid_sample = point_sample.bilinear_grid_sample
    ops.sigmoid_focal_loss = sigmoid_focal_loss
    sys.modules['mmcv.ops'] = ops
    mmcv.ops = ops
    return True


def _history_buffer_getattr(owner, name: str):
    """The only ``getattr`` a checkpoint may call under safe loading.

    mmengine's ``HistoryBuffer.__getstate__`` pickles its statistics methods
    as ``getattr(HistoryBuffer, 'mean')`` etc. Allowing the builtin
    ``getattr`` would let a checkpoint reach arbitrary attributes, so this
    stand-in only returns HistoryBuffer's statistics methods.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    if (
        owner is HistoryBuffer
        and not name.startswith('_')
        and callable(getattr(HistoryBuffer, name, None))
    ):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); only public '
        'HistoryBuffer statistics methods are allowed under safe loading'
    )


def register_safe_checkpoint_globals() -> list:
    """Allow mmengine's plain-data checkpoint objects under safe loading.

    torch >= 2.6 defaults ``torch.load`` to ``weights_only=True``. Runner
    checkpoints written by mmengine 0.10 contain a ``HistoryBuffer`` (message
    hub, with its statistics methods) and numpy arrays and scalars. This
    adds exactly those to torch's safe-globals allowlist instead of turning
    safe loading off, so ``load_from``, ``--resume`` and
    ``mmengine.runner.load_checkpoint`` work and arbitrary code in a
    checkpoint is still refused.

    Returns:
        list: What was registered (empty on torch without an allowlist,
        which does not load weights-only by default either).
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return []
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    reconstruct = np.ndarray.__reduce__(np.zeros(0))[0]
    scalar = np.float64(0).__reduce__()[0]
    safe = [HistoryBuffer, np.ndarray, np.dtype]
    # numpy 2 pickles `numpy._core.multiarray.*`, numpy 1 `numpy.core.*`;
    # checkpoints from either must load whichever numpy is installed.
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        safe += [
            (reconstruct, f'{module}._reconstruct'),
            (scalar, f'{module}.scalar'),
        ]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25 dtype classes
    if dtypes is not None:
        safe += [getattr(dtypes, n) for n in dtypes.__all__]
    for name in ('__builtin__.getattr', 'builtins.getattr'):
        safe.append((_history_buffer_getattr, name))
    add_safe_globals(safe)
    return safe
