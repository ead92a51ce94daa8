"""Building blocks of the Lite-HRNet backbone, one component per module.

Lite-HRNet: A Lightweight High-Resolution Network (Yu et al., CVPR 2021),
https://arxiv.org/abs/2104.06403. The backbone that assembles them is
:class:`litehrnet_seg.models.backbones.LiteHRNet`.
"""

from .common import CheckpointedModule, dw_pw
from .conditional_channel_weighting import (
    ConditionalChannelWeighting,
    CrossResolutionWeighting,
    SpatialWeighting,
)
from .iterative_head import IterativeHead
from .lite_hr_module import LiteHRModule
from .ops import adaptive_avg_pool, channel_shuffle, concat_shuffle
from .shuffle_unit import ShuffleUnit
from .stem import Stem

__all__ = [
    'CheckpointedModule',
    'ConditionalChannelWeighting',
    'CrossResolutionWeighting',
    'IterativeHead',
    'LiteHRModule',
    'ShuffleUnit',
    'SpatialWeighting',
    'Stem',
    'adaptive_avg_pool',
    'channel_shuffle',
    'concat_shuffle',
    'dw_pw',
]
