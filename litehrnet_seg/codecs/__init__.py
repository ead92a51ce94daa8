"""Keypoint codecs and geometry helpers for top-down pose estimation.

Follows mmpose 1.x in names, conventions and numerics:
:class:`MSRAHeatmap` (:mod:`.msra_heatmap`) composes the heatmap helpers
of :mod:`.heatmap_encoding` and :mod:`.heatmap_decoding`; the pipeline's
box and warp geometry is in :mod:`.keypoint_geometry`.
"""

from .heatmap_decoding import (
    flip_heatmaps,
    get_heatmap_maximum,
    refine_keypoints,
    refine_keypoints_dark,
)
from .heatmap_encoding import (
    generate_gaussian_heatmaps,
    generate_unbiased_gaussian_heatmaps,
)
from .keypoint_geometry import (
    affine_points,
    bbox_xyxy2cs,
    fix_aspect_ratio,
    get_warp_matrix,
)
from .msra_heatmap import MSRAHeatmap

__all__ = [
    'MSRAHeatmap',
    'affine_points',
    'bbox_xyxy2cs',
    'fix_aspect_ratio',
    'flip_heatmaps',
    'generate_gaussian_heatmaps',
    'generate_unbiased_gaussian_heatmaps',
    'get_heatmap_maximum',
    'get_warp_matrix',
    'refine_keypoints',
    'refine_keypoints_dark',
]
