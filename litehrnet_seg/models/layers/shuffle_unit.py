"""ShuffleNetV2 unit of the naive Lite-HRNet variants."""

import torch
import torch.nn as nn

from .common import CheckpointedModule, depthwise_conv, pointwise_conv
from .ops import concat_shuffle


class ShuffleUnit(CheckpointedModule):
    """ShuffleNetV2 unit with stride 1 (https://arxiv.org/abs/1807.11164).

    Used by the naive Lite-HRNet variants (Lite-HRNet,
    https://arxiv.org/abs/2104.06403) in place of conditional channel
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
        super().__init__(with_cp)
        half = channels // 2
        layer = (conv_cfg, norm_cfg)
        self.branch2 = nn.Sequential(
            pointwise_conv(half, half, *layer),
            depthwise_conv(half, 1, *layer),
            pointwise_conv(half, half, *layer),
        )

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return concat_shuffle(x1, self.branch2(x2))
