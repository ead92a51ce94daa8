"""Keypoint codecs and geometry helpers for top-down pose estimation.

The public names are listed once, in :mod:`.msra_heatmap`'s ``__all__``.
"""

from .msra_heatmap import *  # noqa: F403
from .msra_heatmap import __all__  # noqa: F401
