"""Parameters and FLOPs of a config's model, under either FLOPs convention.

``'mmengine'``: mmengine's counter (``mmengine.analysis.FlopAnalyzer``,
fvcore-style, one multiply-add = one FLOP, every call counted, decimal
units), the project's default. ``'official'``: the Lite-HRNet paper's
counter (:mod:`.official_flops`, binary units), the only one whose figures
compare with the paper's.
"""

import contextlib
from pathlib import Path

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config

from .official_flops import GIGA, MEGA, count_official_flops

CONVENTIONS = ('mmengine', 'official')
#: Units of each convention: decimal for mmengine, binary for the paper.
UNITS = dict(mmengine=dict(M=10**6, G=10**9), official=dict(M=MEGA, G=GIGA))
#: Qualified name of the backbone in a counting model.
BACKBONE = 'model.backbone'


def _plain_bn(node):
    """SyncBN -> BN in a (nested) config, in place."""
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
        for value in node.values():
            _plain_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _plain_bn(value)


def build_counting_model(config: str | Path | Config) -> nn.Module:
    """The eval-mode model of a config (``mmseg::`` names allowed), built
    with plain BN where the config says SyncBN: the paper's counter knows
    only ``BatchNorm2d``, and a one-process count needs no SyncBN.

    Returns:
        nn.Module: A :class:`~litehrnet_seg.deploy.TensorModel` (images in,
        logits or heatmaps out) around the model.
    """
    from ..checkpoint import build_model, load_config
    from ..deploy import TensorModel

    cfg = load_config(config)
    _plain_bn(cfg.model)
    return TensorModel(build_model(cfg)).eval()


@contextlib.contextmanager
def _run_time_paths_while_tracing():
    """mmengine's counter traces the model with ``torch.jit``, and under
    the tracer :class:`LiteHRNet` takes its ONNX export form of adaptive
    pooling (averaging matmuls with bin matrices), which mmengine counts:
    +0.37 GFLOPs for Lite-HRNet-18 at 512x1024 that no eager forward
    computes. Count the run-time form (``F.adaptive_avg_pool2d``) instead;
    a no-op where the backbone has no such switch."""
    from ..models.layers import ops

    exporting = getattr(ops, '_exporting', None)
    if exporting is None:
        yield
        return
    ops._exporting = torch.compiler.is_exporting
    try:
        yield
    finally:
        ops._exporting = exporting


def count_flops(
    model: nn.Module, height: int, width: int, convention: str = 'mmengine'
) -> dict:
    """FLOPs and parameters of a counting model for one input size.

    Args:
        model (nn.Module): From :func:`build_counting_model`.
        height (int): Input height.
        width (int): Input width.
        convention (str): ``'mmengine'`` or ``'official'``.

    Returns:
        dict: ``flops`` and ``backbone_flops`` (in that convention's
        count; divide by ``UNITS[convention]['G']`` for its G), ``params``,
        ``skipped`` (operators mmengine skips with their call counts, or
        module types the official convention counts 0).
    """
    if convention not in CONVENTIONS:
        raise ValueError(
            f'convention must be one of {CONVENTIONS}, got {convention!r}'
        )
    inputs = torch.randn(1, 3, height, width)
    params = parameter_count(model)['']
    if convention == 'official':
        result = count_official_flops(model, inputs)
        return dict(
            flops=result.total,
            backbone_flops=result.under(BACKBONE),
            params=params,
            skipped=dict(result.uncounted),
        )
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad(), _run_time_paths_while_tracing():
        flops = analyzer.total()
        backbone = analyzer.by_module().get(BACKBONE, 0)
    return dict(
        flops=flops,
        backbone_flops=backbone,
        params=params,
        skipped=dict(analyzer.unsupported_ops()),
    )
