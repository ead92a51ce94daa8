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
from mmengine.model import BaseModule
from mmseg.registry import MODELS

# The building blocks live in ``litehrnet_seg.models.layers``, one per
# module.
from ..layers import IterativeHead, LiteHRModule, Stem
from ..layers.common import downsample, dw_pw

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
        fuse_sum_order (str): 'sequential' (default, the official order,
            bit for bit) or 'coarse_first' (fewer full-resolution resizes
            and additions, equal up to float rounding; the inference fast
            path and ONNX export switch to it). See :class:`LiteHRModule`.
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
        fuse_sum_order: str = 'sequential',
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
                            fuse_sum_order=fuse_sum_order,
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
        channels_pre: list[int],
        channels_cur: list[int],
        conv_cfg: dict | None,
        norm_cfg: dict,
    ) -> nn.ModuleList:
        """Adapt widths of existing branches and create new ones."""
        layers = nn.ModuleList()
        for i, c_out in enumerate(channels_cur):
            if i < len(channels_pre):
                c_in = channels_pre[i]
                layers.append(
                    None
                    if c_in == c_out
                    else dw_pw(c_in, c_out, 1, True, conv_cfg, norm_cfg)
                )
            else:
                # New branches grow from the last existing one, halving the
                # resolution at every step.
                steps = i + 1 - len(channels_pre)
                layers.append(
                    downsample(
                        channels_pre[-1],
                        c_out,
                        steps,
                        True,
                        conv_cfg,
                        norm_cfg,
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
