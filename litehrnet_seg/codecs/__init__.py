"""Keypoint codecs and geometry helpers for top-down pose estimation."""

from .msra_heatmap import (
    MSRAHeatmap,
    affine_points,
    bbox_xyxy2cs,
    fix_aspect_ratio,
    flip_heatmaps,
    generate_gaussian_heatmaps,
    get_heatmap_maximum,
    get_warp_matrix,
    refine_keypoints,
    refine_keypoints_dark,
)

__all__ = [
    'MSRAHeatmap',
    'affine_points',
    'bbox_xyxy2cs',
    'fix_aspect_ratio',
    'flip_heatmaps',
    'generate_gaussian_heatmaps',
    'get_heatmap_maximum',
    'get_warp_matrix',
    'refine_keypoints',
    'refine_keypoints_dark',
]
