"""IterativeHead of Lite-HRNet (https://arxiv.org/abs/2104.06403)."""

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import DepthwiseSeparableConvModule
from mmengine.model import BaseModule


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
        """Forward.

        Args:
            x (list[Tensor]): One feature map per branch, highest
                resolution first.

        Returns:
            list[Tensor]: The aggregated maps, same sizes as ``x``, with
            :attr:`out_channels` channels.
        """
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
