"""Multi-resolution module of Lite-HRNet (https://arxiv.org/abs/2104.06403)."""

from collections.abc import Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from .common import conv_norm, downsample
from .conditional_channel_weighting import ConditionalChannelWeighting
from .ops import resize_nearest
from .shuffle_unit import ShuffleUnit

#: Valid ``fuse_sum_order`` values of :class:`LiteHRModule`.
FUSE_SUM_ORDERS = ('sequential', 'coarse_first')


def _halving(sizes: Sequence) -> bool:
    """Whether each (H, W) is exactly twice the next one, in plain ints.

    Symbolic sizes (dynamic-shape exports) and traced ones do not count:
    the graph must stay right for every input size.
    """
    if torch.jit.is_tracing():
        return False
    return all(
        type(big) is int and type(small) is int and big == 2 * small
        for pair in zip(sizes[:-1], sizes[1:], strict=True)
        for big, small in zip(*pair, strict=True)
    )


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
        fuse_sum_order (str): How each output sums the branches upsampled
            to it. 'sequential' (the official order) adds them one by one
            at the output's resolution; 'coarse_first' adds each to the
            next finer branch before upsampling (``u2(a + u2(b))`` for
            ``u2(a) + u4(b)``), saving most full-resolution resizes and
            additions: equal up to float rounding, and used only when
            every branch is exactly half the size of the previous one
            (nested nearest resizes of other sizes pick other pixels).
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
        fuse_sum_order: str = 'sequential',
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
        if fuse_sum_order not in FUSE_SUM_ORDERS:
            raise ValueError(
                f'fuse_sum_order must be one of {FUSE_SUM_ORDERS}, got '
                f'{fuse_sum_order!r}'
            )
        self.fuse_sum_order = fuse_sum_order
        layer = (conv_cfg, norm_cfg)
        if self.module_type == 'LITE':
            self.layers = nn.Sequential(
                *(
                    ConditionalChannelWeighting(
                        in_channels, reduce_ratio, *layer, with_cp
                    )
                    for _ in range(num_blocks)
                )
            )
        elif self.module_type == 'NAIVE':
            self.layers = nn.ModuleList(
                nn.Sequential(
                    *(
                        ShuffleUnit(c, *layer, with_cp)
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

    def _make_fuse_layers(
        self, conv_cfg: dict | None, norm_cfg: dict
    ) -> nn.ModuleList:
        """``fuse_layers[i][j]`` maps branch j to branch i's shape."""
        channels = self.in_channels
        fuse_layers = nn.ModuleList()
        for i, c_out in enumerate(channels):
            fuse_layer = nn.ModuleList()
            for j, c_in in enumerate(channels):
                if j > i:
                    # The upsampling itself happens in forward, to the exact
                    # size of branch i (no parameters, so no keys change).
                    layers = conv_norm(c_in, c_out, 1, conv_cfg, norm_cfg)
                    fuse_layer.append(nn.Sequential(*layers))
                elif j == i:
                    fuse_layer.append(None)
                else:
                    fuse_layer.append(
                        downsample(
                            c_in, c_out, i - j, False, conv_cfg, norm_cfg
                        )
                    )
            fuse_layers.append(fuse_layer)
        return fuse_layers

    def _transform(
        self, i: int, j: int, x: torch.Tensor, size
    ) -> torch.Tensor:
        """Branch j's features brought to output branch i."""
        y = self.fuse_layers[i][j](x)
        return resize_nearest(y, size) if j > i else y

    def _add_upsampled(
        self, i: int, y: torch.Tensor, x: list[torch.Tensor], sizes
    ) -> torch.Tensor:
        """``y`` plus the branches j > i brought to output branch i."""
        n = self.num_branches
        # With two or more such branches the order matters.
        reorder = self.fuse_sum_order == 'coarse_first' and i < n - 2
        if reorder and _halving(sizes[i:]):
            acc = self.fuse_layers[i][n - 1](x[n - 1])
            for j in range(n - 2, i, -1):
                up = resize_nearest(acc, sizes[j])
                acc = self.fuse_layers[i][j](x[j]) + up
            return y + resize_nearest(acc, sizes[i])
        for j in range(i + 1, n):
            y = y + self._transform(i, j, x[j], sizes[i])
        return y

    def _fuse(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        sizes = [s.shape[-2:] for s in x]
        n = self.num_branches
        if self.fuse_mode == 'clean':
            outs = []
            for i in range(n):
                y = x[i]
                for j in range(i):
                    y = y + self._transform(i, j, x[j], sizes[i])
                outs.append(self.relu(self._add_upsampled(i, y, x, sizes)))
            return outs
        # Official fuse: output 0 starts from branch 0 and adds it again,
        # in place, so branch 0 now holds that pre-ReLU sum s0; outputs
        # i > 0 read s0 as their branch-0 input and also add it twice.
        # Written without in-place ops; 2 * t is bitwise t + t.
        s0 = self._add_upsampled(0, x[0] + x[0], x, sizes)
        outs = [self.relu(s0)]
        for i in range(1, n):
            from0 = self._transform(i, 0, s0, sizes[i])
            y = from0 + from0
            for j in range(1, i + 1):
                y = y + (
                    x[j] if j == i else self._transform(i, j, x[j], sizes[i])
                )
            outs.append(self.relu(self._add_upsampled(i, y, x, sizes)))
        return outs

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        """Forward.

        Args:
            x (list[Tensor]): One feature map per branch, highest
                resolution first.

        Returns:
            list[Tensor]: Same shapes as ``x``.
        """
        if self.module_type == 'LITE':
            out = self.layers(list(x))
        else:
            out = [layer(s) for layer, s in zip(self.layers, x, strict=True)]
        if self.with_fuse and self.num_branches > 1:
            out = self._fuse(out)
        return out
