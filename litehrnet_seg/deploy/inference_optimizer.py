"""Inference-time optimisations that keep the eager model's numerics.

Each step is exact up to float rounding (max abs difference ~1e-6 on
logits, tested against 1e-4):

* ``coarse_first_fuse``: the backbone's fuse layers add the upsampled
  coarse branches to each other before the last upsampling
  (``fuse_sum_order='coarse_first'`` of :class:`LiteHRModule`): at
  stride 4, one nearest resize and one addition instead of three, where
  the branches halve exactly. At 512x1024 on a 2-core CPU: 4-5% off the
  Lite-HRNet-18 backbone in NCHW, ~1% in channels_last, 6-11% off a
  static-shape onnxruntime graph (docs/benchmarks.md).
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
* ``cuda_graphs`` (CUDA only): the whole forward is captured once per
  input shape and replayed, removing the per-kernel launch overhead that
  dominates a network of ~1000 small kernels at batch 1. Together with
  ``compile`` it is ``torch.compile(mode='reduce-overhead')`` (inductor's
  CUDA graphs); alone, :class:`CUDAGraphModel` captures the eager model
  with static input buffers. Without CUDA it is skipped with a logged
  message (the other steps still apply).

ONNX Runtime is the other deployment route, see :mod:`.onnx_export`.
"""

import copy
import logging

import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn
from mmengine.logging import print_log

from ..models.layers import LiteHRModule
from .project_then_upsample_head import (
    ProjectThenUpsampleHead,
    is_reorderable,
)

#: Step names, in the order they are applied.
OPTIMIZATION_STEPS = (
    'coarse_first_fuse',
    'fold_bn',
    'reorder_head',
    'channels_last',
    'compile',
    'cuda_graphs',
)

#: Steps of the default fast path (:func:`optimize`, the inferencers,
#: ``tools/test.py --optimize``): those that pay off on every device.
DEFAULT_STEPS = ('coarse_first_fuse', 'fold_bn', 'channels_last')

#: Logged when ``cuda_graphs`` is requested for a model not on a GPU.
NO_CUDA_GRAPHS = (
    'cuda_graphs: CUDA graphs need a CUDA device (the model is on {}); '
    'running without graph capture'
)


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


class CUDAGraphModel(nn.Module):
    """Replays a CUDA graph of a model's whole forward.

    The forward is captured on the first call for each input shape, dtype
    and device (after warm-up calls on a side stream, as CUDA graph
    capture requires), with the input copied into a static buffer; later
    calls copy the input in, replay the graph and return a copy of the
    static output. A new shape, dtype or autocast state is a new capture.
    Gradients are not recorded: inference only. Inputs not on a CUDA
    device run the model directly.

    See https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs.

    Args:
        model (nn.Module): Tensor-in model whose output is a tensor or a
            tuple/list of tensors; must not synchronise with the host
            (no ``.item()``, no data-dependent shapes).
        warmup (int): Eager calls before each capture. Defaults to 3.
    """

    def __init__(self, model: nn.Module, warmup: int = 3) -> None:
        super().__init__()
        self.model = model
        self.warmup = warmup
        # key -> (graph, static input, static output); not a buffer.
        self.graphs = {}

    def forward(self, x: torch.Tensor):
        if not x.is_cuda:
            return self.model(x)
        # A graph replays the kernels (and precision) it was captured with.
        key = (
            tuple(x.shape),
            x.stride(),
            x.dtype,
            x.device,
            torch.is_autocast_enabled('cuda'),
            torch.get_autocast_dtype('cuda'),
        )
        if key not in self.graphs:
            self.graphs[key] = self._capture(x)
        graph, static_x, static_y = self.graphs[key]
        static_x.copy_(x)
        graph.replay()
        if isinstance(static_y, torch.Tensor):
            return static_y.clone()
        return type(static_y)(y.clone() for y in static_y)

    @torch.no_grad()
    def _capture(self, x: torch.Tensor):
        static_x = x.clone()
        side = torch.cuda.Stream(device=x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        # Warm-up off the capture stream: cuDNN autotuning and lazy
        # allocations must not happen during capture.
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.model(static_x)
        torch.cuda.current_stream(x.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_y = self.model(static_x)
        return graph, static_x, static_y


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


def sum_fuses_coarse_first(model: nn.Module) -> int:
    """Switch every Lite-HRNet module of ``model`` to the coarse-first
    fuse sum (``fuse_sum_order='coarse_first'``), in place.

    Args:
        model (nn.Module): Any model; other modules are left alone.

    Returns:
        int: How many modules were switched.
    """
    modules = [m for m in model.modules() if isinstance(m, LiteHRModule)]
    for module in modules:
        module.fuse_sum_order = 'coarse_first'
    return len(modules)


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
    steps: tuple[str, ...] = DEFAULT_STEPS,
    compile_options: dict | None = None,
) -> InferenceModel:
    """Prepare a tensor model for fast inference without changing outputs.

    The input model is not modified (a copy is optimised).

    Args:
        model (nn.Module): Tensor-in, tensor-out model, e.g.
            :class:`TensorModel` of a segmentor.
        steps (tuple[str]): Subset of :data:`OPTIMIZATION_STEPS`.
        compile_options (dict, optional): Keyword arguments of
            ``torch.compile`` for the 'compile' step. With 'cuda_graphs'
            on a GPU, ``mode`` defaults to 'reduce-overhead'.

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
    if 'coarse_first_fuse' in steps:
        sum_fuses_coarse_first(model)
    if 'fold_bn' in steps:
        model = fold_batch_norms(model)
    if 'reorder_head' in steps:
        reorder_concat_heads(model)
    channels_last = 'channels_last' in steps
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    cuda_graphs = 'cuda_graphs' in steps and _cuda_graphs_possible(model)
    if 'compile' in steps:
        options = dict(compile_options or {})
        if cuda_graphs:
            options.setdefault('mode', 'reduce-overhead')
        model = torch.compile(model, **options)
    elif cuda_graphs:
        model = CUDAGraphModel(model)
    return InferenceModel(model, channels_last).eval()


def _cuda_graphs_possible(model: nn.Module) -> bool:
    """Whether ``model`` is on a CUDA device; logs why not otherwise."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device('cpu')
    if device.type == 'cuda':
        return True
    print_log(
        NO_CUDA_GRAPHS.format(device), logger='current', level=logging.WARNING
    )
    return False
