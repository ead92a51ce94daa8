"""Gaussian heatmap targets (MSRA and DARK), as in mmpose 1.x.

Heatmaps are ``(K, H, W)`` float32 and sizes are ``(w, h)``; heatmap
pixel ``(x, y)`` covers input pixel ``(x, y) * input / heatmap`` (no
half-pixel offset, the "biased" MSRA convention). See
:class:`~litehrnet_seg.codecs.MSRAHeatmap`.
"""

import math
from collections.abc import Sequence

import numpy as np


def _canvas(
    heatmap_size: Sequence[int],
    keypoints: np.ndarray,
    keypoints_visible: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Zero heatmaps (K, h, w) and a float32 copy of the visibilities."""
    width, height = int(heatmap_size[0]), int(heatmap_size[1])
    heatmaps = np.zeros((keypoints.shape[1], height, width), np.float32)
    return heatmaps, np.asarray(keypoints_visible, np.float32).copy()


def generate_gaussian_heatmaps(
    heatmap_size: Sequence[int],
    keypoints: np.ndarray,
    keypoints_visible: np.ndarray,
    sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw MSRA (non-unbiased) Gaussian heatmaps.

    Each visible keypoint gets an unnormalized Gaussian (peak 1) centred on
    its rounded position, drawn inside a 3-sigma window; instances are
    merged with a pixel-wise maximum. As in mmpose:

    * the center is ``int(x + 0.5)`` (truncation toward zero);
    * keypoints with visibility < 0.5 get weight 0 and are not drawn;
    * a keypoint whose window lies fully outside the map gets weight 0;
      the test is mmpose's (``left >= W or top >= H or right < 0 or
      bottom < 0`` with exclusive ``right``/``bottom``).

    Args:
        heatmap_size (Sequence[int]): Heatmap size (w, h).
        keypoints (np.ndarray): Keypoints in heatmap pixels, shape (N, K, 2).
        keypoints_visible (np.ndarray): Visibility in shape (N, K).
        sigma (float): Gaussian standard deviation in heatmap pixels.

    Returns:
        tuple:
        - heatmaps (np.ndarray): float32 heatmaps in shape (K, h, w).
        - keypoint_weights (np.ndarray): float32 weights in shape (N, K).
    """
    keypoints = np.asarray(keypoints)
    heatmaps, weights = _canvas(heatmap_size, keypoints, keypoints_visible)
    height, width = heatmaps.shape[1:]
    radius = 3 * sigma
    lo, hi = math.ceil(radius), math.floor(radius)
    offsets = np.arange(-lo, hi + 1, dtype=np.float32)
    gaussian = np.exp(
        -(offsets[None, :] ** 2 + offsets[:, None] ** 2) / (2 * sigma**2)
    )

    for n, k in np.ndindex(*keypoints.shape[:2]):
        if weights[n, k] < 0.5:
            continue
        mu_x, mu_y = (keypoints[n, k, :2] + 0.5).astype(np.int64)
        left, top = mu_x - lo, mu_y - lo
        right, bottom = mu_x + hi + 1, mu_y + hi + 1
        if left >= width or top >= height or right < 0 or bottom < 0:
            weights[n, k] = 0
            continue
        x1, x2 = max(0, left), min(width, right)
        y1, y2 = max(0, top), min(height, bottom)
        if x1 >= x2 or y1 >= y2:
            continue
        patch = gaussian[y1 - top : y2 - top, x1 - left : x2 - left]
        region = heatmaps[k, y1:y2, x1:x2]
        np.maximum(region, patch, out=region)
    return heatmaps, weights


def generate_unbiased_gaussian_heatmaps(
    heatmap_size: Sequence[int],
    keypoints: np.ndarray,
    keypoints_visible: np.ndarray,
    sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """DARK encoding: Gaussians at the exact sub-pixel keypoints.

    Same weights rule as :func:`generate_gaussian_heatmaps` (on the
    unrounded window), but the Gaussian is evaluated on the whole map
    (Zhang et al., https://arxiv.org/abs/1910.06278). Arguments and
    return values as :func:`generate_gaussian_heatmaps`.
    """
    heatmaps, weights = _canvas(heatmap_size, keypoints, keypoints_visible)
    height, width = heatmaps.shape[1:]
    radius = 3 * sigma
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    for n, k in np.ndindex(*keypoints.shape[:2]):
        if weights[n, k] < 0.5:
            continue
        mu_x, mu_y = keypoints[n, k, :2]
        if (
            mu_x - radius >= width
            or mu_y - radius >= height
            or mu_x + radius + 1 < 0
            or mu_y + radius + 1 < 0
        ):
            weights[n, k] = 0
            continue
        gaussian = np.exp(
            -((xs - mu_x) ** 2 + (ys - mu_y) ** 2) / (2 * sigma**2)
        )
        np.maximum(heatmaps[k], gaussian, out=heatmaps[k])
    return heatmaps, weights
