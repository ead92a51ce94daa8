"""Model analysis: parameters and FLOPs, in mmengine's convention and in
the Lite-HRNet paper's."""

from .complexity import (
    CONVENTIONS,
    UNITS,
    build_counting_model,
    count_flops,
)
from .official_flops import (
    GIGA,
    MEGA,
    OfficialFlops,
    count_official_flops,
    module_flops,
)

__all__ = [
    'CONVENTIONS',
    'GIGA',
    'MEGA',
    'OfficialFlops',
    'UNITS',
    'build_counting_model',
    'count_flops',
    'count_official_flops',
    'module_flops',
]
