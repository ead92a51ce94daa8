"""Stem of Lite-HRNet (https://arxiv.org/abs/2104.06403)."""

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from .common import CheckpointedModule, depthwise_conv, pointwise_conv
from .ops import concat_shuffle


class Stem(CheckpointedModule):
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
        super().__init__(with_cp)
        self.out_channels = out_channels
        layer = (conv_cfg, norm_cfg)
        self.conv1 = ConvModule(
            in_channels,
            stem_channels,
            3,
            2,
            1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=dict(type='ReLU'),
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
            depthwise_conv(branch_channels, 2, *layer),
            pointwise_conv(branch_channels, inc_channels, *layer),
        )
        self.expand_conv = pointwise_conv(
            branch_channels, mid_channels, *layer
        )
        self.depthwise_conv = depthwise_conv(mid_channels, 2, *layer)
        self.linear_conv = pointwise_conv(
            mid_channels, linear_channels, *layer
        )

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x1, x2 = x.chunk(2, dim=1)
        x2 = self.linear_conv(self.depthwise_conv(self.expand_conv(x2)))
        return concat_shuffle(self.branch1(x1), x2)
