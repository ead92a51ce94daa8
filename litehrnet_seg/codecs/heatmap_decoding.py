"""Heatmap decoding: maxima, sub-pixel refinement and flip TTA.

As mmpose 1.x (``mmpose/codecs/utils``): the classic MSRA quarter-pixel
shift, DARK refinement (https://arxiv.org/abs/1910.06278) and the flip
of heatmaps predicted on a horizontally flipped input. Everything is
numpy except :func:`flip_heatmaps`, which works on torch tensors.
"""

from collections.abc import Sequence

import cv2
import numpy as np
import torch


def get_heatmap_maximum(
    heatmaps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Location and value of each heatmap's maximum.

    Args:
        heatmaps (np.ndarray): Heatmaps in shape (K, h, w) or (B, K, h, w).

    Returns:
        tuple:
        - locs (np.ndarray): float32 (x, y) of the maxima in shape (K, 2) or
          (B, K, 2); ``-1`` where the maximum is <= 0.
        - vals (np.ndarray): The maxima in shape (K,) or (B, K).
    """
    assert isinstance(heatmaps, np.ndarray), 'heatmaps must be np.ndarray'
    assert heatmaps.ndim in (3, 4), f'Invalid shape {heatmaps.shape}'
    lead = heatmaps.shape[:-2]
    height, width = heatmaps.shape[-2:]
    flat = heatmaps.reshape(-1, height * width)
    index = np.argmax(flat, axis=1)
    vals = flat[np.arange(flat.shape[0]), index]
    locs = np.stack([index % width, index // width], axis=-1)
    locs = locs.astype(np.float32)
    locs[vals <= 0] = -1
    return locs.reshape(*lead, 2), vals.reshape(lead)


def refine_keypoints(
    keypoints: np.ndarray, heatmaps: np.ndarray
) -> np.ndarray:
    """Move each keypoint a quarter pixel toward its higher neighbour.

    The classic MSRA sub-pixel step, per axis, with mmpose's border rules
    (x is refined when ``1 < x < w - 1``, y when ``1 < y < h - 1``).

    Args:
        keypoints (np.ndarray): Integer-valued keypoints (x, y) in heatmap
            pixels, shape (N, K, 2).
        heatmaps (np.ndarray): Heatmaps in shape (K, h, w).

    Returns:
        np.ndarray: Refined keypoints (a new array) in shape (N, K, 2).
    """
    keypoints = np.array(keypoints, dtype=np.float32)
    height, width = heatmaps.shape[1:]
    for n, k in np.ndindex(*keypoints.shape[:2]):
        x, y = keypoints[n, k, :2].astype(int)
        dx = dy = 0.0
        if 1 < x < width - 1 and 0 < y < height:
            dx = heatmaps[k, y, x + 1] - heatmaps[k, y, x - 1]
        if 1 < y < height - 1 and 0 < x < width:
            dy = heatmaps[k, y + 1, x] - heatmaps[k, y - 1, x]
        keypoints[n, k, :2] += np.sign([dx, dy]).astype(np.float32) * 0.25
    return keypoints


def _blur_heatmaps(heatmaps: np.ndarray, kernel_size: int) -> np.ndarray:
    """Gaussian-blur each heatmap (zero border), keeping its maximum."""
    assert kernel_size % 2 == 1, 'blur_kernel_size must be odd'
    out = np.empty_like(heatmaps, dtype=np.float32)
    for k, heatmap in enumerate(heatmaps):
        peak = float(heatmap.max())
        blurred = cv2.GaussianBlur(
            heatmap.astype(np.float32),
            (kernel_size, kernel_size),
            0,
            borderType=cv2.BORDER_CONSTANT,
        )
        top = float(blurred.max())
        if top > 0:
            blurred *= peak / top
        out[k] = blurred
    return out


def refine_keypoints_dark(
    keypoints: np.ndarray, heatmaps: np.ndarray, blur_kernel_size: int
) -> np.ndarray:
    """Refine keypoints with DARK (distribution-aware decoding).

    The heatmaps are blurred with a Gaussian (``blur_kernel_size`` should
    match the training sigma: 11 for sigma 2, 17 for sigma 3), log-ed, and
    each keypoint takes one Newton step ``-H^-1 g`` on the log heatmap
    (Zhang et al., https://arxiv.org/abs/1910.06278). Keypoints within two
    pixels of the border are left as they are, as in mmpose.

    Args:
        keypoints (np.ndarray): Keypoints (x, y) in heatmap pixels at the
            maxima, shape (N, K, 2).
        heatmaps (np.ndarray): Heatmaps in shape (K, h, w); not modified.
        blur_kernel_size (int): Odd Gaussian kernel size of the blur.

    Returns:
        np.ndarray: Refined keypoints (a new array) in shape (N, K, 2).
    """
    keypoints = np.array(keypoints, dtype=np.float32)
    height, width = heatmaps.shape[1:]
    logs = np.log(
        np.maximum(_blur_heatmaps(heatmaps, blur_kernel_size), 1e-10)
    )
    for n, k in np.ndindex(*keypoints.shape[:2]):
        x, y = keypoints[n, k, :2].astype(int)
        if not (1 < x < width - 2 and 1 < y < height - 2):
            continue
        h = logs[k].astype(np.float64)
        dx = 0.5 * (h[y, x + 1] - h[y, x - 1])
        dy = 0.5 * (h[y + 1, x] - h[y - 1, x])
        dxx = 0.25 * (h[y, x + 2] - 2 * h[y, x] + h[y, x - 2])
        dyy = 0.25 * (h[y + 2, x] - 2 * h[y, x] + h[y - 2, x])
        dxy = 0.25 * (
            h[y + 1, x + 1]
            - h[y - 1, x + 1]
            - h[y + 1, x - 1]
            + h[y - 1, x - 1]
        )
        det = dxx * dyy - dxy**2
        if det == 0:
            continue
        # offset = -inv([[dxx, dxy], [dxy, dyy]]) @ [dx, dy]
        off_x = -(dyy * dx - dxy * dy) / det
        off_y = -(dxx * dy - dxy * dx) / det
        keypoints[n, k, 0] += off_x
        keypoints[n, k, 1] += off_y
    return keypoints


def flip_heatmaps(
    heatmaps: torch.Tensor,
    flip_indices: Sequence[int] | None = None,
    shift_heatmap: bool = True,
) -> torch.Tensor:
    """Flip heatmaps of a horizontally flipped input back (flip TTA).

    mmpose's ``flip_heatmaps`` in ``'heatmap'`` mode: flip the width axis,
    reorder channels with ``flip_indices`` (left <-> right) and, with
    ``shift_heatmap``, move the result one pixel right (column 0 keeps its
    value) to compensate the ``x -> w - 1 - x`` flip of the image being
    done on a 4x coarser grid.

    Args:
        heatmaps (torch.Tensor): Heatmaps in shape (B, K, h, w).
        flip_indices (Sequence[int], optional): Index of each keypoint's
            symmetric keypoint. Defaults to None (no reordering).
        shift_heatmap (bool): Whether to shift one pixel right. Defaults to
            True.

    Returns:
        torch.Tensor: The flipped heatmaps (a new tensor), (B, K, h, w).
    """
    out = heatmaps.flip(-1)
    if flip_indices is not None:
        assert len(flip_indices) == heatmaps.shape[1], (
            f'{len(flip_indices)} flip_indices for {heatmaps.shape[1]} '
            'heatmap channels'
        )
        out = out[:, list(flip_indices)]
    if shift_heatmap:
        out[..., 1:] = out[..., :-1].clone()
    return out
