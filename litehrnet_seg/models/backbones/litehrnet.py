"""Lite-HRNet backbone.

Lite-HRNet: A Lightweight High-Resolution Network (Yu et al., CVPR 2021),
https://arxiv.org/abs/2104.06403.

The network, its state-dict keys and its numerics follow the official code
(https://github.com/HRNet/Lite-HRNet, also mmpose's ``LiteHRNet``), so the
published checkpoints load unchanged. Differences, none of which changes the
outputs for inputs the official code accepts:

* fuse and weighting upsampling go to the exact target size, so any input
  size works (the official fixed scale factors crash unless the sides are
  multiples of 32);
* all four branches can be returned (segmentation), not only the first;
* ``with_cp`` works, ``train()`` returns ``self``; ``frozen_stages``.

CPU inference forwards can run in channels_last internally
(``cpu_channels_last``, off by default so that the default numerics stay
the official NCHW computation bit for bit): equal up to float rounding, and
faster because oneDNN's depthwise convolutions are (docs/benchmarks.md).
The inference fast path (:func:`litehrnet_seg.deploy.optimize`,
``channels_last`` step) gets the same speed by converting the weights.
"""

import copy
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import (
    ConvModule,
    DepthwiseSeparableConvModule,
    build_conv_layer,
    build_norm_layer,
)
from mmengine.model import BaseModule
from mmseg.registry import MODELS

# Variants as data: the mmpose-style ``extra`` dict of each named arch.
_LITE = dict(
    stem=dict(stem_channels=32, out_channels=32, expand_ratio=1),
    num_stages=3,
    stages_spec=dict(
        num_modules=(2, 4, 2),
        num_branches=(2, 3, 4),
        num_blocks=(2, 2, 2),
        module_type=('LITE', 'LITE', 'LITE'),
        with_fuse=(True, True, True),
        reduce_ratios=(8, 8, 8),
        num_channels=((40, 80), (40, 80, 160), (40, 80, 160, 320)),
    ),
    with_head=True,
)


def _variant(num_modules=(2, 4, 2), module_type='LITE', channels=40):
    extra = copy.deepcopy(_LITE)
    spec = extra['stages_spec']
    spec['num_modules'] = num_modules
    spec['module_type'] = (module_type,) * 3
    widths = tuple(channels * 2**i for i in range(4))
    spec['num_channels'] = (widths[:2], widths[:3], widths)
    return extra


ARCH_SETTINGS = {
    '18': _variant((2, 4, 2)),
    '30': _variant((3, 8, 3)),
    'naive_18': _variant((2, 4, 2), 'NAIVE', 30),
    'wider_naive_18': _variant((2, 4, 2), 'NAIVE', 40),
}


def _is_channels_last(x: torch.Tensor) -> bool:
    # Also true for channel slices of an NHWC tensor (``chunk`` halves).
    return x.dim() == 4 and x.stride(1) == 1 and x.shape[1] > 1


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Channel shuffle of ShuffleNet (https://arxiv.org/abs/1707.01083).

    Args:
        x (Tensor): Input of shape (N, C, H, W), C divisible by ``groups``.
        groups (int): Number of groups.

    Returns:
        Tensor: The shuffled tensor, same shape.
    """
    n, c, h, w = x.shape
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2)
    return x.reshape(n, c, h, w)


def concat_shuffle(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """``channel_shuffle(torch.cat((x1, x2), 1), 2)`` with a single copy.

    The two-group shuffle of a concatenation interleaves the channels of
    its halves (x1[0], x2[0], x1[1], ...), which is a stack along a new
    axis after the channel axis. Pure data movement, so bitwise equal to
    the official cat + shuffle; keeps x1's memory format.

    Args:
        x1 (Tensor): First half, shape (N, C, H, W).
        x2 (Tensor): Second half, same shape.

    Returns:
        Tensor: Shape (N, 2C, H, W).
    """
    if _is_channels_last(x1):
        y = torch.stack((x1.permute(0, 2, 3, 1), x2.permute(0, 2, 3, 1)), 4)
        return y.flatten(3).permute(0, 3, 1, 2)
    return torch.stack((x1, x2), 2).flatten(1, 2)


def _exporting() -> bool:
    # torch.export / dynamo ONNX, or the TorchScript ONNX exporter's
    # tracer: both record sizes symbolically, so size-driven code exports
    # shape-dynamic where PyTorch's own ops would bake constants.
    return torch.compiler.is_exporting() or torch.jit.is_tracing()


def _resize_nearest(x: torch.Tensor, size) -> torch.Tensor:
    # Exact target size: equals the official fixed scale factor whenever
    # that one is defined, and also works for sides not divisible by 32.
    # Traced sizes are tensors: comparing them would bake this input's
    # answer into the graph, so the tracer always resizes (a same-size
    # nearest resize is the identity, exactly).
    if not torch.jit.is_tracing() and x.shape[-2:] == size:
        return x
    return F.interpolate(x, size=size, mode='nearest')


def _bin_matrix(size: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, size) matrix averaging PyTorch's adaptive-pooling bins.

    Bin i covers [floor(i * size / bins), ceil((i + 1) * size / bins)).
    Under the TorchScript tracer ``size`` and ``bins`` are 0-dim tensors
    (traced sizes); the same integer arithmetic then records a graph that
    rebuilds the matrix for every input size.
    """
    i = torch.arange(bins, device=like.device).unsqueeze(1)
    j = torch.arange(size, device=like.device).unsqueeze(0)
    start = torch.div(i * size, bins, rounding_mode='floor')
    end = torch.div((i + 1) * size + bins - 1, bins, rounding_mode='floor')
    inside = (j >= start) & (j < end)
    return inside.to(like.dtype) / (end - start).to(like.dtype)


def adaptive_avg_pool(x: torch.Tensor, size) -> torch.Tensor:
    """``F.adaptive_avg_pool2d`` that also exports right for any size.

    Exporters (torch.export, ONNX) lower adaptive pooling to a fixed-kernel
    pooling derived from the example input, which is wrong (or fails) for
    sizes whose ratio is not that example's, e.g. sides not divisible by
    32. While exporting, the same bins are averaged with two small
    matrices built from the runtime sizes instead (equal up to float
    rounding); eager and compiled runs keep PyTorch's op.

    Args:
        x (Tensor): Input of shape (N, C, H, W).
        size (tuple[int, int]): Output height and width.

    Returns:
        Tensor: Shape (N, C, *size).
    """
    if not _exporting():
        return F.adaptive_avg_pool2d(x, size)
    rows = _bin_matrix(x.shape[-2], size[0], x)
    cols = _bin_matrix(x.shape[-1], size[1], x)
    return rows @ x @ cols.transpose(0, 1)


class _CheckpointMixin:
    """Runs ``_forward`` under activation checkpointing when asked."""

    with_cp = False

    def forward(self, x):
        if self.with_cp and torch.is_grad_enabled():
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


class Stem(_CheckpointMixin, BaseModule):
    """Lite-HRNet stem: stride-2 conv then a stride-2 shuffle-style block.

    Args:
        in_channels (int): Input channels.
        stem_channels (int): Channels of the first conv.
        out_channels (int): Output channels.
        expand_ratio (float): Expansion of the depthwise branch.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm layer config.
        with_cp (bool): Use activation checkpointing.
    """

    def __init__(
        self,
        in_channels: int,
        stem_channels: int,
        out_channels: int,
        expand_ratio: float,
        conv_cfg: dict | None = None,
        norm_cfg: dict = dict(type='BN'),
        with_cp: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.with_cp = with_cp
        layer = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        relu = dict(type='ReLU')
        self.conv1 = ConvModule(
            in_channels, stem_channels, 3, 2, 1, act_cfg=relu, **layer
        )
        mid_channels = int(round(stem_channels * expand_ratio))
        branch_channels = stem_channels // 2
        if stem_channels == out_channels:
            inc_channels = out_channels - branch_channels
            linear_channels = branch_channels
        else:
            inc_channels = out_channels - stem_channels
            linear_channels = stem_channels
        self.branch1 = nn.Sequential(
            ConvModule(
                branch_channels,
                branch_channels,
                3,
                2,
                1,
                groups=branch_channels,
                act_cfg=None,
                **layer,
            ),
            ConvModule(
                branch_channels, inc_channels, 1, act_cfg=relu, **layer
            ),
        )
        self.expand_conv = ConvModule(
            branch_channels, mid_channels, 1, act_cfg=relu, **layer
        )
        self.depthwise_conv = ConvModule(
            mid_channels,
            mid_channels,
            3,
            2,
            1,
            groups=mid_channels,
            act_cfg=None,
            **layer,
        )
        self.linear_conv = ConvModule(
            mid_channels, linear_channels, 1, act_cfg=relu, **layer
        )

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x1, x2 = x.chunk(2, dim=1)
        x2 = self.linear_conv(self.depthwise_conv(self.expand_conv(x2)))
        return concat_shuffle(self.branch1(x1), x2)


class CrossResolutionWeighting(BaseModule):
    """Channel weights computed jointly from all resolutions.

    Every branch is average-pooled to the smallest branch's size, the
    concatenation goes through two 1x1 convs, and the resulting weights are
    split per branch, upsampled (nearest) and multiplied in.

    Args:
        channels (Sequence[int]): Channels of each branch.
        ratio (int): Channel reduction of the first 1x1 conv.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm layer config.
    """

    def __init__(
        self,
        channels: Sequence[int],
        ratio: int,
        conv_cfg: dict | None = None,
        norm_cfg: dict = dict(type='BN'),
    ) -> None:
        super().__init__()
        self.channels = list(channels)
        total = sum(channels)
        layer = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.conv1 = ConvModule(
            total, int(total / ratio), 1, act_cfg=dict(type='ReLU'), **layer
        )
        self.conv2 = ConvModule(
            int(total / ratio), total, 1, act_cfg=dict(type='Sigmoid'), **layer
        )

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        mini_size = x[-1].shape[-2:]
        pooled = [adaptive_avg_pool(s, mini_size) for s in x[:-1]]
        weights = self.conv2(self.conv1(torch.cat(pooled + [x[-1]], dim=1)))
        weights = torch.split(weights, self.channels, dim=1)
        return [
            s * _resize_nearest(a, s.shape[-2:])
            for s, a in zip(x, weights, strict=True)
        ]


class SpatialWeighting(BaseModule):
    """Squeeze-and-excitation weighting of one branch.

    Args:
        channels (int): Channels of the branch.
        ratio (int): Channel reduction. Defaults to 4.
        conv_cfg (dict, optional): Conv layer config.
    """

    def __init__(
        self, channels: int, ratio: int = 4, conv_cfg: dict | None = None
    ) -> None:
        super().__init__()
        self.conv1 = ConvModule(
            channels,
            int(channels / ratio),
            1,
            conv_cfg=conv_cfg,
            act_cfg=dict(type='ReLU'),
        )
        self.conv2 = ConvModule(
            int(channels / ratio),
            channels,
            1,
            conv_cfg=conv_cfg,
            act_cfg=dict(type='Sigmoid'),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv2(self.conv1(F.adaptive_avg_pool2d(x, 1)))


class ConditionalChannelWeighting(_CheckpointMixin, BaseModule):
    """Lite-HRNet's replacement for the shuffle block's 1x1 convolutions.

    Each branch is split in halves; the second halves are reweighted across
    resolutions, depthwise-convolved and reweighted spatially, then joined
    with the first halves and channel-shuffled.

    Args:
        in_channels (Sequence[int]): Channels of each branch.
        reduce_ratio (int): Reduction of the cross-resolution weighting.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm layer config.
        with_cp (bool): Use activation checkpointing.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        reduce_ratio: int,
        conv_cfg: dict | None = None,
        norm_cfg: dict = dict(type='BN'),
        with_cp: bool = False,
    ) -> None:
        super().__init__()
        self.with_cp = with_cp
        branch_channels = [c // 2 for c in in_channels]
        self.cross_resolution_weighting = CrossResolutionWeighting(
            branch_channels, reduce_ratio, conv_cfg, norm_cfg
        )
        self.depthwise_convs = nn.ModuleList(
            ConvModule(
                c,
                c,
                3,
                1,
                1,
                groups=c,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=None,
            )
            for c in branch_channels
        )
        self.spatial_weighting = nn.ModuleList(
            SpatialWeighting(c, 4, conv_cfg) for c in branch_channels
        )

    def _forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        halves = [s.chunk(2, dim=1) for s in x]
        x2 = self.cross_resolution_weighting([h[1] for h in halves])
        x2 = [
            sw(dw(s))
            for s, dw, sw in zip(
                x2, self.depthwise_convs, self.spatial_weighting, strict=True
            )
        ]
        return [
            concat_shuffle(h[0], s) for h, s in zip(halves, x2, strict=True)
        ]


class ShuffleUnit(_CheckpointMixin, BaseModule):
    """ShuffleNetV2 unit with stride 1 (https://arxiv.org/abs/1807.11164).

    Used by the naive Lite-HRNet variants in place of conditional channel
    weighting.

    Args:
        channels (int): Input and output channels.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm layer config.
        with_cp (bool): Use activation checkpointing.
    """

    def __init__(
        self,
        channels: int,
        conv_cfg: dict | None = None,
        norm_cfg: dict = dict(type='BN'),
        with_cp: bool = False,
    ) -> None:
        super().__init__()
        self.with_cp = with_cp
        half = channels // 2
        layer = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        relu = dict(type='ReLU')
        self.branch2 = nn.Sequential(
            ConvModule(half, half, 1, act_cfg=relu, **layer),
            ConvModule(
                half, half, 3, 1, 1, groups=half, act_cfg=None, **layer
            ),
            ConvModule(half, half, 1, act_cfg=relu, **layer),
        )

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return concat_shuffle(x1, self.branch2(x2))


def _dw_pw(
    in_channels: int,
    out_channels: int,
    stride: int,
    relu: bool,
    conv_cfg: dict | None,
    norm_cfg: dict,
) -> nn.Sequential:
    """Depthwise 3x3 + BN + pointwise 1x1 + BN (+ ReLU), official layout.

    Kept as a plain ``nn.Sequential`` (keys ``0``-``3``) because that is the
    layout of the official transition and fuse layers' state dicts.
    """
    layers = [
        build_conv_layer(
            conv_cfg,
            in_channels,
            in_channels,
            3,
            stride,
            1,
            groups=in_channels,
            bias=False,
        ),
        build_norm_layer(norm_cfg, in_channels)[1],
        build_conv_layer(conv_cfg, in_channels, out_channels, 1, bias=False),
        build_norm_layer(norm_cfg, out_channels)[1],
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class LiteHRModule(BaseModule):
    """One multi-resolution module: per-branch blocks, then fusion.

    Args:
        num_branches (int): Number of branches.
        num_blocks (int): Blocks per module.
        in_channels (Sequence[int]): Channels of each branch.
        reduce_ratio (int): Reduction of the cross-resolution weighting.
        module_type (str): 'LITE' (conditional channel weighting) or
            'NAIVE' (ShuffleNetV2 units).
        with_fuse (bool): Exchange information across branches.
        fuse_mode (str): 'official' reproduces the official fuse exactly
            (branch 0 is added twice and its pre-activation sum feeds the
            other outputs, see :meth:`_fuse`); 'clean' is the textbook
            HRNet fuse. Published weights were trained with 'official'.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm layer config.
        with_cp (bool): Use activation checkpointing.
    """

    def __init__(
        self,
        num_branches: int,
        num_blocks: int,
        in_channels: Sequence[int],
        reduce_ratio: int,
        module_type: str,
        with_fuse: bool = True,
        fuse_mode: str = 'official',
        conv_cfg: dict | None = None,
        norm_cfg: dict = dict(type='BN'),
        with_cp: bool = False,
    ) -> None:
        super().__init__()
        if len(in_channels) != num_branches:
            raise ValueError(
                f'num_branches ({num_branches}) must equal '
                f'len(in_channels) ({len(in_channels)})'
            )
        self.num_branches = num_branches
        self.in_channels = list(in_channels)
        self.module_type = module_type.upper()
        self.with_fuse = with_fuse
        self.fuse_mode = fuse_mode
        if self.module_type == 'LITE':
            self.layers = nn.Sequential(
                *(
                    ConditionalChannelWeighting(
                        in_channels, reduce_ratio, conv_cfg, norm_cfg, with_cp
                    )
                    for _ in range(num_blocks)
                )
            )
        elif self.module_type == 'NAIVE':
            self.layers = nn.ModuleList(
                nn.Sequential(
                    *(
                        ShuffleUnit(c, conv_cfg, norm_cfg, with_cp)
                        for _ in range(num_blocks)
                    )
                )
                for c in in_channels
            )
        else:
            raise ValueError(
                f"module_type must be 'LITE' or 'NAIVE', got {module_type!r}"
            )
        if with_fuse and num_branches > 1:
            self.fuse_layers = self._make_fuse_layers(conv_cfg, norm_cfg)
            self.relu = nn.ReLU()

    def _make_fuse_layers(self, conv_cfg, norm_cfg) -> nn.ModuleList:
        """``fuse_layers[i][j]`` maps branch j to branch i's shape."""
        channels = self.in_channels
        fuse_layers = nn.ModuleList()
        for i in range(self.num_branches):
            fuse_layer = nn.ModuleList()
            for j in range(self.num_branches):
                if j > i:
                    # The upsampling itself happens in forward, to the exact
                    # size of branch i (no parameters, so no keys change).
                    fuse_layer.append(
                        nn.Sequential(
                            build_conv_layer(
                                conv_cfg,
                                channels[j],
                                channels[i],
                                1,
                                bias=False,
                            ),
                            build_norm_layer(norm_cfg, channels[i])[1],
                        )
                    )
                elif j == i:
                    fuse_layer.append(None)
                else:
                    steps = [
                        _dw_pw(
                            channels[j],
                            channels[j],
                            2,
                            True,
                            conv_cfg,
                            norm_cfg,
                        )
                        for _ in range(i - j - 1)
                    ]
                    steps.append(
                        _dw_pw(
                            channels[j],
                            channels[i],
                            2,
                            False,
                            conv_cfg,
                            norm_cfg,
                        )
                    )
                    fuse_layer.append(nn.Sequential(*steps))
            fuse_layers.append(fuse_layer)
        return fuse_layers

    def _transform(
        self, i: int, j: int, x: torch.Tensor, size
    ) -> torch.Tensor:
        """Branch j's features brought to output branch i."""
        y = self.fuse_layers[i][j](x)
        return _resize_nearest(y, size) if j > i else y

    def _fuse(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        sizes = [s.shape[-2:] for s in x]
        n = self.num_branches
        if self.fuse_mode == 'clean':
            outs = []
            for i in range(n):
                y = x[i]
                for j in range(n):
                    if j != i:
                        y = y + self._transform(i, j, x[j], sizes[i])
                outs.append(self.relu(y))
            return outs
        # Official fuse: output 0 starts from branch 0 and adds it again,
        # in place, so branch 0 now holds that pre-ReLU sum s0; outputs
        # i > 0 read s0 as their branch-0 input and also add it twice.
        # Written without in-place ops; 2 * t is bitwise t + t.
        s0 = x[0] + x[0]
        for j in range(1, n):
            s0 = s0 + self._transform(0, j, x[j], sizes[0])
        outs = [self.relu(s0)]
        for i in range(1, n):
            from0 = self._transform(i, 0, s0, sizes[i])
            y = from0 + from0
            for j in range(1, n):
                y = y + (
                    x[j] if j == i else self._transform(i, j, x[j], sizes[i])
                )
            outs.append(self.relu(y))
        return outs

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.module_type == 'LITE':
            out = self.layers(list(x))
        else:
            out = [layer(s) for layer, s in zip(self.layers, x, strict=True)]
        if self.with_fuse and self.num_branches > 1:
            out = self._fuse(out)
        return out


class IterativeHead(BaseModule):
    """Lite-HRNet's IterativeHead: coarse-to-fine aggregation of branches.

    From the lowest resolution up, each branch adds the bilinearly
    upsampled result of the previous step and goes through a depthwise
    separable conv that maps it to the next branch's width.

    Args:
        in_channels (Sequence[int]): Channels of the branches, highest
            resolution first.
        norm_cfg (dict): Norm layer config.
    """

    def __init__(
        self, in_channels: Sequence[int], norm_cfg: dict = dict(type='BN')
    ) -> None:
        super().__init__()
        reversed_channels = list(in_channels)[::-1]
        out_channels = reversed_channels[1:] + reversed_channels[-1:]
        self.projects = nn.ModuleList(
            DepthwiseSeparableConvModule(
                c_in,
                c_out,
                3,
                padding=1,
                norm_cfg=norm_cfg,
                dw_act_cfg=None,
                pw_act_cfg=dict(type='ReLU'),
            )
            for c_in, c_out in zip(
                reversed_channels, out_channels, strict=True
            )
        )
        #: Output channels, highest resolution first.
        self.out_channels = tuple(out_channels[::-1])

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = []
        last = None
        for s, project in zip(x[::-1], self.projects, strict=True):
            if last is not None:
                s = s + F.interpolate(
                    last,
                    size=s.shape[-2:],
                    mode='bilinear',
                    align_corners=True,
                )
            last = project(s)
            outs.append(last)
        return outs[::-1]


@MODELS.register_module()
class LiteHRNet(BaseModule):
    """Lite-HRNet backbone for segmentation and pose.

    Paper: Lite-HRNet: A Lightweight High-Resolution Network,
    https://arxiv.org/abs/2104.06403.

    Args:
        arch (str): Named variant, one of ``ARCH_SETTINGS``: '18', '30',
            'naive_18', 'wider_naive_18'. Ignored when ``extra`` is given.
        extra (dict, optional): Explicit mmpose-style architecture dict
            (keys ``stem``, ``num_stages``, ``stages_spec``, optionally
            ``with_head``). Defaults to None.
        in_channels (int): Input image channels. Defaults to 3.
        with_head (bool, optional): Append the IterativeHead. None takes
            ``extra['with_head']`` (True for the named variants).
        out_indices (Sequence[int]): Branches to return, highest
            resolution first: (0, 1, 2, 3) for segmentation, (0, ) for
            pose. Defaults to (0, 1, 2, 3).
        fuse_mode (str): 'official' (default, what published weights were
            trained with) or 'clean'. See :class:`LiteHRModule`.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm layer config, e.g. ``dict(type='SyncBN')``.
        norm_eval (bool): Keep norm layers in eval mode (frozen running
            statistics) during training. Defaults to False.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k >= 1 the
            stem and the first k stages (with their transitions).
        with_cp (bool): Activation checkpointing (saves memory, costs
            time; BN running statistics are updated twice per step).
        cpu_channels_last (bool): Run CPU inference forwards (gradients
            off) in channels_last (NHWC) internally and return the
            features in the input's memory format. oneDNN's depthwise
            convolutions, most of this network, are several times faster
            in NHWC; the outputs equal the NCHW computation up to float
            rounding. Not used with gradients on (oneDNN's NHWC weight
            gradients were 100x further from float64 than NCHW's for the
            stem), on other devices or while exporting. Defaults to False
            (the official NCHW numerics, bit for bit).
        init_cfg (dict | list[dict], optional): Initialization config,
            e.g. ``dict(type='Pretrained', checkpoint=..., prefix=...)``.
    """

    def __init__(
        self,
        arch: str = '18',
        extra: dict | None = None,
        in_channels: int = 3,
        with_head: bool | None = None,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        fuse_mode: str = 'official',
        conv_cfg: dict | None = None,
        norm_cfg: dict = dict(type='BN'),
        norm_eval: bool = False,
        frozen_stages: int = -1,
        with_cp: bool = False,
        cpu_channels_last: bool = False,
        init_cfg: dict | list | None = [
            dict(type='Normal', std=0.001, layer=['Conv2d']),
            dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
        ],
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if extra is None:
            if str(arch) not in ARCH_SETTINGS:
                raise ValueError(
                    f'Unknown Lite-HRNet arch {arch!r}; valid names: '
                    f'{sorted(ARCH_SETTINGS)} (or pass an explicit `extra` '
                    'dict)'
                )
            extra = ARCH_SETTINGS[str(arch)]
        self.extra = copy.deepcopy(extra)
        self._check_extra(self.extra)
        if fuse_mode not in ('official', 'clean'):
            raise ValueError(
                f"fuse_mode must be 'official' or 'clean', got {fuse_mode!r}"
            )
        self.with_head = (
            self.extra.get('with_head', True)
            if with_head is None
            else with_head
        )
        self.norm_eval = norm_eval
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp
        self.cpu_channels_last = cpu_channels_last

        spec = self.extra['stages_spec']
        self.num_stages = self.extra['num_stages']
        self.stem = Stem(
            in_channels,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            with_cp=with_cp,
            **self.extra['stem'],
        )
        channels_last = [self.stem.out_channels]
        for i in range(self.num_stages):
            channels = list(spec['num_channels'][i])
            self.add_module(
                f'transition{i}',
                self._make_transition(
                    channels_last, channels, conv_cfg, norm_cfg
                ),
            )
            self.add_module(
                f'stage{i}',
                nn.Sequential(
                    *(
                        LiteHRModule(
                            spec['num_branches'][i],
                            spec['num_blocks'][i],
                            channels,
                            spec['reduce_ratios'][i],
                            spec['module_type'][i],
                            with_fuse=spec['with_fuse'][i],
                            fuse_mode=fuse_mode,
                            conv_cfg=conv_cfg,
                            norm_cfg=norm_cfg,
                            with_cp=with_cp,
                        )
                        for _ in range(spec['num_modules'][i])
                    )
                ),
            )
            channels_last = channels
        branch_channels = tuple(channels_last)
        if self.with_head:
            self.head_layer = IterativeHead(branch_channels, norm_cfg)
            branch_channels = self.head_layer.out_channels
        num_out = len(branch_channels)
        self.out_indices = tuple(out_indices)
        if not self.out_indices or any(
            not 0 <= i < num_out for i in self.out_indices
        ):
            raise ValueError(
                f'out_indices must be a non-empty subset of '
                f'0..{num_out - 1}, got {out_indices}'
            )
        #: Channels and strides of the returned features, timm-style.
        self.out_channels = tuple(branch_channels[i] for i in out_indices)
        self.out_strides = tuple(4 * 2**i for i in self.out_indices)
        self._freeze_stages()

    @staticmethod
    def _check_extra(extra: dict) -> None:
        missing = {'stem', 'num_stages', 'stages_spec'} - set(extra)
        if missing:
            raise ValueError(
                f'`extra` lacks the key(s) {sorted(missing)}; expected an '
                'mmpose-style Lite-HRNet dict'
            )
        spec = extra['stages_spec']
        keys = (
            'num_modules',
            'num_branches',
            'num_blocks',
            'module_type',
            'with_fuse',
            'reduce_ratios',
            'num_channels',
        )
        for key in keys:
            if key not in spec:
                raise ValueError(f'`extra.stages_spec` lacks {key!r}')
            if len(spec[key]) != extra['num_stages']:
                raise ValueError(
                    f'`extra.stages_spec.{key}` has {len(spec[key])} '
                    f'entries, expected num_stages={extra["num_stages"]}'
                )

    @staticmethod
    def _make_transition(
        channels_pre: list[int], channels_cur: list[int], conv_cfg, norm_cfg
    ) -> nn.ModuleList:
        """Adapt widths of existing branches and create new ones."""
        layers = nn.ModuleList()
        for i, c_out in enumerate(channels_cur):
            if i < len(channels_pre):
                c_in = channels_pre[i]
                layers.append(
                    None
                    if c_in == c_out
                    else _dw_pw(c_in, c_out, 1, True, conv_cfg, norm_cfg)
                )
            else:
                # New branches grow from the last existing one, halving the
                # resolution at every step.
                c_in = channels_pre[-1]
                steps = i + 1 - len(channels_pre)
                layers.append(
                    nn.Sequential(
                        *(
                            _dw_pw(
                                c_in,
                                c_out if k == steps - 1 else c_in,
                                2,
                                True,
                                conv_cfg,
                                norm_cfg,
                            )
                            for k in range(steps)
                        )
                    )
                )
        return layers

    def _frozen_modules(self) -> list[nn.Module]:
        modules = [self.stem] if self.frozen_stages >= 0 else []
        for i in range(min(self.frozen_stages, self.num_stages)):
            modules += [
                getattr(self, f'transition{i}'),
                getattr(self, f'stage{i}'),
            ]
        return modules

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def init_weights(self) -> None:
        """Initialise weights; a ``Pretrained`` init_cfg loads strictly.

        Unlike mmengine's ``Pretrained`` initialisation, a checkpoint that
        does not fit (another arch: missing, unexpected or mismatched keys)
        raises :class:`~litehrnet_seg.checkpoint.CheckpointMismatchError`
        listing the offending tensors instead of loading half a model.
        """
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            # Imported here: the checkpoint package imports this module.
            from ...checkpoint import load_checkpoint

            load_checkpoint(
                self,
                cfg['checkpoint'],
                prefix=cfg.get('prefix'),
                map_location=cfg.get('map_location', 'cpu'),
            )
            self.is_init = True
            return
        super().init_weights()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Forward.

        Args:
            x (Tensor): Images of shape (N, C, H, W), any H and W.

        Returns:
            tuple[Tensor]: Features for ``out_indices``, highest resolution
            first (stride 4 * 2**i for index i).
        """
        to_nhwc = self._runs_channels_last(x)
        if to_nhwc:
            x = x.contiguous(memory_format=torch.channels_last)
        y_list = [self.stem(x)]
        for i in range(self.num_stages):
            transition = getattr(self, f'transition{i}')
            x_list = []
            for j, layer in enumerate(transition):
                # A new branch j is made from the last existing branch.
                src = y_list[min(j, len(y_list) - 1)]
                x_list.append(src if layer is None else layer(src))
            y_list = getattr(self, f'stage{i}')(x_list)
        if self.with_head:
            y_list = self.head_layer(y_list)
        if to_nhwc:
            # Back to the caller's layout: heads and losses may view().
            return tuple(y_list[i].contiguous() for i in self.out_indices)
        return tuple(y_list[i] for i in self.out_indices)

    def _runs_channels_last(self, x: torch.Tensor) -> bool:
        """Whether forward converts a (NCHW) input to channels_last."""
        return (
            self.cpu_channels_last
            and not torch.is_grad_enabled()
            and x.device.type == 'cpu'
            and x.dim() == 4
            and not x.is_contiguous(memory_format=torch.channels_last)
            # Exported graphs keep the plain layout (ONNX has none).
            and not torch.compiler.is_exporting()
            and not torch.jit.is_tracing()
        )

    def train(self, mode: bool = True) -> 'LiteHRNet':
        """Set train mode, keeping frozen stages and (optionally) norms in
        eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm)):
                    m.eval()
        return self
