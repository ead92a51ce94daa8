"""The optimised inference path, keeping the model's mmseg interface."""

import torch.nn as nn

from ..deploy import TensorModel, optimize

#: Steps applied by default: exact up to float rounding (see
#: :mod:`litehrnet_seg.deploy.inference_optimizer`).
DEFAULT_STEPS = ('fold_bn', 'channels_last')


def optimize_for_inference(
    model: nn.Module, compile: bool = False, compile_options: dict = None
) -> nn.Module:
    """An optimised copy of a segmentor or pose estimator, same interface.

    BatchNorms are folded into their convolutions and the weights moved to
    channels_last by :func:`litehrnet_seg.deploy.optimize`; the copy keeps
    ``test_step``, ``predict``, slide mode, flip test and ``dataset_meta``,
    so it drops into any place an eager model in eval mode is used
    (inferencers, ``tools/test.py``). Outputs match eager within 1e-4.

    Args:
        model (nn.Module): An mmseg segmentor or top-down pose estimator.
        compile (bool): Also ``torch.compile`` the backbone and the head's
            forward (one-off compilation cost per input size).
        compile_options (dict, optional): Keyword arguments of
            ``torch.compile``.

    Returns:
        nn.Module: The optimised copy, in eval mode (``model`` is kept).
    """
    # optimize() copies the model and returns a tensor-model wrapper; the
    # segmentor inside it carries the folded, channels_last weights.
    fast = optimize(TensorModel(model.eval()), DEFAULT_STEPS).model.model
    if compile:
        import torch

        options = compile_options or {}
        fast.backbone.compile(**options)
        head = getattr(fast, 'decode_head', None) or fast.head
        # Heads call self.forward from predict(), not __call__.
        head.forward = torch.compile(head.forward, **options)
    return fast.eval()
