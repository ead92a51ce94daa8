"""FLOPs counted the way the Lite-HRNet paper counted them.

The paper's figures (205.2M for Lite-HRNet-18 at 256x192, 1.95G for the
segmentation model at 512x1024, ...) come from the official repository's
``tools/summary_network.py``, which uses a vendored ``torchstat``, not
mmcv's or mmengine's counter. That convention differs from mmengine's in
ways that move figures by 10-25 %:

* a forward hook on every leaf module; per module only its **last** call
  counts (a module called twice counts once);
* only these module types count (input ``N x C x H x W``):

  - ``Conv2d``: ``k_h * k_w * C_in * C_out / groups * N * H_out * W_out``,
    plus ``C_out * N * H_out * W_out`` with a bias (one multiply-add = one
    FLOP);
  - ``BatchNorm2d``: ``N * C * H * W``, twice that when affine;
  - ``ReLU``, ``ReLU6``, ``PReLU``, ``ELU``, ``LeakyReLU``:
    ``N * C * H * W``;
  - ``AvgPool2d``, ``MaxPool2d``: ``N * C * H_out * W_out * k_h * k_w``;
  - ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d``: per output bin
    ``N * C * (bin height + 1) * (bin width + 1)``, bins from
    ``floor(i * H_in / H_out)`` to ``ceil((i + 1) * H_in / H_out)``;
  - ``Upsample``: ``N * H_out * W_out`` (channels not multiplied in);
  - ``Linear``: ``N * in_features * out_features``;

* everything else counts 0: ``Sigmoid``, functional calls
  (``F.interpolate``, ``torch.cat``, products, sums), and module types not
  listed, among them ``SyncBatchNorm`` and mmengine's ``_BatchNormXd``
  (build models with plain ``BN`` before counting; the types left out are
  reported in :attr:`OfficialFlops.uncounted`);
* binary units: M = 2**20, G = 2**30.

Compare a figure with the paper's only under this convention, and figures
of mmengine's counter only with each other.
"""

import math
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn as nn

#: Binary units of the paper's tables.
MEGA = 2**20
GIGA = 2**30

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU)
#: Leaf modules that count 0 by the convention and are not worth a
#: mention in :attr:`OfficialFlops.uncounted`.
_FREE = (
    nn.Sigmoid,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
    nn.Hardsigmoid,
    nn.Softmax,
)


def _tensor(x):
    """The first tensor of a hook's args/output."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for item in x:
            t = _tensor(item)
            if t is not None:
                return t
    return None


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _adaptive_bins_sum(size_in: int, size_out: int) -> int:
    """Sum over output bins of (bin length + 1) along one axis."""
    total = 0
    for i in range(size_out):
        start = math.floor(i * size_in / size_out)
        end = math.ceil((i + 1) * size_in / size_out)
        total += end - start + 1
    return total


def module_flops(module: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """FLOPs of one call of a leaf module under the paper's convention.

    Args:
        module (nn.Module): The module.
        x (Tensor): Its (first) input.
        y (Tensor): Its (first) output.

    Returns:
        int | None: The count; None for a module type the convention does
        not know (it counts 0).
    """
    if isinstance(module, nn.Conv2d):
        n, c_out, h_out, w_out = y.shape
        k_h, k_w = module.kernel_size
        flops = (k_h * k_w * module.in_channels * (c_out // module.groups)) * (
            n * h_out * w_out
        )
        if module.bias is not None:
            flops += c_out * n * h_out * w_out
        return flops
    if isinstance(module, nn.BatchNorm2d):
        return x.numel() * (2 if module.affine else 1)
    if isinstance(module, _ACTIVATIONS):
        return x.numel()
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        k_h, k_w = _pair(module.kernel_size)
        return y.numel() * k_h * k_w
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        n, c, h_in, w_in = x.shape
        h_out, w_out = y.shape[-2:]
        return (
            n
            * c
            * _adaptive_bins_sum(h_in, h_out)
            * _adaptive_bins_sum(w_in, w_out)
        )
    if isinstance(module, nn.Upsample):
        return y.shape[0] * y.shape[-2] * y.shape[-1]
    if isinstance(module, nn.Linear):
        return x.shape[0] * module.in_features * module.out_features
    if isinstance(module, _FREE):
        return 0
    return None


@dataclass
class OfficialFlops:
    """Result of :func:`count_official_flops`.

    Attributes:
        total (int): FLOPs of the whole forward.
        by_module (dict[str, int]): Last-call FLOPs of every counted leaf
            module, by qualified name.
        uncounted (Counter): Types of the called leaf modules the
            convention does not know (counted 0), with how many modules.
    """

    total: int
    by_module: dict = field(default_factory=dict)
    uncounted: Counter = field(default_factory=Counter)

    def under(self, prefix: str) -> int:
        """FLOPs of the modules under a qualified name prefix, e.g.
        ``'model.backbone'``."""
        prefix = prefix.rstrip('.') + '.'
        return sum(
            v for k, v in self.by_module.items() if k.startswith(prefix)
        )


def count_official_flops(model: nn.Module, *inputs) -> OfficialFlops:
    """Run ``model(*inputs)`` once (no grad) and count its FLOPs the way
    the Lite-HRNet paper did (see the module docstring).

    Args:
        model (nn.Module): Model to count, e.g. a
            :class:`~litehrnet_seg.deploy.TensorModel`; plain BN, in eval
            mode for figures like the paper's.
        *inputs: Its forward arguments, e.g. a (1, 3, H, W) tensor.

    Returns:
        OfficialFlops: Total, per-module figures, uncounted module types.
    """
    last: dict[str, int] = {}
    uncounted: dict[str, str] = {}

    def hook(name):
        def record(module, args, output):
            figure = module_flops(module, _tensor(args), _tensor(output))
            if figure is None:
                uncounted[name] = type(module).__name__
            else:
                last[name] = int(figure)  # overwrite: last call counts

        return record

    handles = [
        module.register_forward_hook(hook(name))
        for name, module in model.named_modules()
        if next(module.children(), None) is None
    ]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return OfficialFlops(
        total=sum(last.values()),
        by_module=last,
        uncounted=Counter(uncounted.values()),
    )
