"""Pieces shared by the Lite-HRNet blocks.

Lite-HRNet (Yu et al., CVPR 2021, https://arxiv.org/abs/2104.06403)
builds everything from a few conv shapes: 3x3 depthwise and 1x1
pointwise ``ConvModule``\\ s inside the blocks, and plain
``nn.Sequential`` conv + norm stacks (the official transition and fuse
layers' state-dict layout, keys ``0``, ``1``, ...) between resolutions.
"""

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_conv_layer, build_norm_layer
from mmengine.model import BaseModule


class CheckpointedModule(BaseModule):
    """A block whose ``forward`` runs ``_forward``, checkpointed on request.

    Args:
        with_cp (bool): Use activation checkpointing (only while gradients
            are on). Defaults to False.
    """

    def __init__(self, with_cp: bool = False) -> None:
        super().__init__()
        self.with_cp = with_cp

    def forward(self, x):
        if self.with_cp and torch.is_grad_enabled():
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


def depthwise_conv(
    channels: int, stride: int, conv_cfg: dict | None, norm_cfg: dict | None
) -> ConvModule:
    """3x3 depthwise ``ConvModule`` with norm and no activation.

    Args:
        channels (int): Input and output channels.
        stride (int): Stride.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict, optional): Norm layer config.
    """
    return ConvModule(
        channels,
        channels,
        3,
        stride,
        1,
        groups=channels,
        conv_cfg=conv_cfg,
        norm_cfg=norm_cfg,
        act_cfg=None,
    )


def pointwise_conv(
    in_channels: int,
    out_channels: int,
    conv_cfg: dict | None,
    norm_cfg: dict | None,
    act: str = 'ReLU',
) -> ConvModule:
    """1x1 ``ConvModule`` (norm unless ``norm_cfg`` is None, then bias).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict, optional): Norm layer config.
        act (str): Activation type. Defaults to 'ReLU'.
    """
    return ConvModule(
        in_channels,
        out_channels,
        1,
        conv_cfg=conv_cfg,
        norm_cfg=norm_cfg,
        act_cfg=dict(type=act),
    )


def conv_norm(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    conv_cfg: dict | None,
    norm_cfg: dict,
    stride: int = 1,
    groups: int = 1,
) -> list[nn.Module]:
    """A bias-free conv and its norm layer, as a list for ``Sequential``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): 1 or 3 (padded to keep the size at stride 1).
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm layer config.
        stride (int): Stride. Defaults to 1.
        groups (int): Conv groups. Defaults to 1.
    """
    conv = build_conv_layer(
        conv_cfg,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        kernel_size // 2,
        groups=groups,
        bias=False,
    )
    return [conv, build_norm_layer(norm_cfg, out_channels)[1]]


def dw_pw(
    in_channels: int,
    out_channels: int,
    stride: int,
    relu: bool,
    conv_cfg: dict | None,
    norm_cfg: dict,
) -> nn.Sequential:
    """Depthwise 3x3 + BN + pointwise 1x1 + BN (+ ReLU), official layout.

    Kept as a plain ``nn.Sequential`` (keys ``0``-``3``) because that is
    the layout of the official transition and fuse layers' state dicts.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the depthwise conv.
        relu (bool): Append a ReLU.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm layer config.
    """
    layers = conv_norm(
        in_channels,
        in_channels,
        3,
        conv_cfg,
        norm_cfg,
        stride=stride,
        groups=in_channels,
    )
    layers += conv_norm(in_channels, out_channels, 1, conv_cfg, norm_cfg)
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def downsample(
    in_channels: int,
    out_channels: int,
    num_steps: int,
    last_relu: bool,
    conv_cfg: dict | None,
    norm_cfg: dict,
) -> nn.Sequential:
    """``num_steps`` stride-2 :func:`dw_pw` blocks, halving the size each.

    Only the last block changes the width; all but the last end in a
    ReLU, the last one when ``last_relu``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        num_steps (int): Number of halvings (>= 1).
        last_relu (bool): Whether the last block ends in a ReLU.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm layer config.
    """
    last = num_steps - 1
    return nn.Sequential(
        *(
            dw_pw(
                in_channels,
                out_channels if k == last else in_channels,
                2,
                last_relu or k < last,
                conv_cfg,
                norm_cfg,
            )
            for k in range(num_steps)
        )
    )
