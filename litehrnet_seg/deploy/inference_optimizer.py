"""Inference-time optimisations that keep the eager model's numerics.

Each step is exact up to float rounding (max abs difference ~1e-6 on
logits, tested against 1e-4):

* ``fold_bn``: every BatchNorm that follows a convolution is folded into
  the convolution's weights and bias (mmcv's ``fuse_conv_bn``), removing
  ~200 BN passes over the feature maps.
* ``reorder_head`` (optional, not a default): the HRNetV2 concat head's
  1x1 conv runs on each branch before upsampling instead of on the
  upsampled concatenation (:class:`ProjectThenUpsampleHead`; 3.4 -> 0.6
  GFLOPs for Lite-HRNet-18 at 512x1024). Measured *slower* on CPUs
  (upsampling 320-channel maps is memory-bound and costs more than the
  saved multiply-adds, docs/benchmarks.md); kept for accelerators where
  FLOPs dominate. Models without such a head are left as they are.
* ``channels_last``: weights and activations in NHWC, where oneDNN's
  depthwise and 1x1 convolutions are several times faster on CPUs (and
  tensor cores are fed on GPUs). The backbone keeps the layout through its
  channel shuffles, so nothing is converted back and forth.
* ``compile``: ``torch.compile`` (inductor) fuses the element-wise work
  (weighting products, fuse sums, ReLUs); costs a one-off compilation.

ONNX Runtime is the other deployment route, see :mod:`.onnx_export`.
"""

import copy

import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn

from .project_then_upsample_head import (
    ProjectThenUpsampleHead,
    is_reorderable,
)

#: Step names, in the order they are applied.
OPTIMIZATION_STEPS = ('fold_bn', 'reorder_head', 'channels_last', 'compile')


class InferenceModel(nn.Module):
    """A tensor model prepared for inference (see :func:`optimize`).

    Args:
        model (nn.Module): The prepared tensor model.
        channels_last (bool): Convert inputs to channels_last first.
    """

    def __init__(self, model: nn.Module, channels_last: bool) -> None:
        super().__init__()
        self.model = model
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x).contiguous()


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold eval-mode BatchNorms into the preceding convs, in place.

    Args:
        model (nn.Module): Model in eval mode.

    Returns:
        nn.Module: The same model, BNs replaced by ``nn.Identity``.
    """
    if model.training:
        raise ValueError(
            'fold_batch_norms needs a model in eval mode (BN running '
            'statistics are folded); call model.eval() first'
        )
    return fuse_conv_bn(model)


def reorder_concat_heads(model: nn.Module) -> int:
    """Replace every HRNetV2-style concat ``decode_head`` in ``model`` by
    its :class:`ProjectThenUpsampleHead`, in place.

    Args:
        model (nn.Module): Model in eval mode.

    Returns:
        int: How many heads were replaced.
    """
    count = 0
    for module in list(model.modules()):
        head = getattr(module, 'decode_head', None)
        if isinstance(head, nn.Module) and is_reorderable(head):
            module.decode_head = ProjectThenUpsampleHead(head)
            count += 1
    return count


def optimize(
    model: nn.Module,
    steps: tuple[str, ...] = ('fold_bn', 'channels_last'),
    compile_options: dict | None = None,
) -> InferenceModel:
    """Prepare a tensor model for fast inference without changing outputs.

    The input model is not modified (a copy is optimised).

    Args:
        model (nn.Module): Tensor-in, tensor-out model, e.g.
            :class:`TensorModel` of a segmentor.
        steps (tuple[str]): Subset of :data:`OPTIMIZATION_STEPS`.
        compile_options (dict, optional): Keyword arguments of
            ``torch.compile`` for the 'compile' step.

    Returns:
        InferenceModel: The optimised model, in eval mode.
    """
    unknown = set(steps) - set(OPTIMIZATION_STEPS)
    if unknown:
        raise ValueError(
            f'Unknown optimization step(s) {sorted(unknown)}; valid: '
            f'{list(OPTIMIZATION_STEPS)}'
        )
    model = copy.deepcopy(model).eval()
    if 'fold_bn' in steps:
        model = fold_batch_norms(model)
    if 'reorder_head' in steps:
        reorder_concat_heads(model)
    channels_last = 'channels_last' in steps
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if 'compile' in steps:
        model = torch.compile(model, **(compile_options or {}))
    return InferenceModel(model, channels_last).eval()
