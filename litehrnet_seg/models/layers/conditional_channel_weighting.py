"""Conditional channel weighting, the core block of Lite-HRNet.

Lite-HRNet (Yu et al., CVPR 2021, https://arxiv.org/abs/2104.06403)
replaces the 1x1 convolutions of the shuffle block by weights computed
across resolutions (:class:`CrossResolutionWeighting`) and within each
branch (:class:`SpatialWeighting`).
"""

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from .common import CheckpointedModule, depthwise_conv, pointwise_conv
from .ops import adaptive_avg_pool, concat_shuffle, resize_nearest


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
        mid = int(total / ratio)
        self.conv1 = pointwise_conv(total, mid, conv_cfg, norm_cfg)
        self.conv2 = pointwise_conv(mid, total, conv_cfg, norm_cfg, 'Sigmoid')

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        mini_size = x[-1].shape[-2:]
        pooled = [adaptive_avg_pool(s, mini_size) for s in x[:-1]]
        weights = self.conv2(self.conv1(torch.cat(pooled + [x[-1]], dim=1)))
        weights = torch.split(weights, self.channels, dim=1)
        return [
            s * resize_nearest(a, s.shape[-2:])
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
        mid = int(channels / ratio)
        self.conv1 = pointwise_conv(channels, mid, conv_cfg, None)
        self.conv2 = pointwise_conv(mid, channels, conv_cfg, None, 'Sigmoid')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv2(self.conv1(F.adaptive_avg_pool2d(x, 1)))


class ConditionalChannelWeighting(CheckpointedModule):
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
        super().__init__(with_cp)
        branch_channels = [c // 2 for c in in_channels]
        self.cross_resolution_weighting = CrossResolutionWeighting(
            branch_channels, reduce_ratio, conv_cfg, norm_cfg
        )
        self.depthwise_convs = nn.ModuleList(
            depthwise_conv(c, 1, conv_cfg, norm_cfg) for c in branch_channels
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
