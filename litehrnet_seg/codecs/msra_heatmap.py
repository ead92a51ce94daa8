"""MSRA Gaussian heatmap codec for top-down pose estimation.

Follows mmpose 1.x (``mmpose/codecs/msra_heatmap.py`` and its helpers)
in names, conventions and numerics, so that mmpose users get the same
targets and the same decoded keypoints:

* boxes are ``center`` (x, y) and ``scale`` (w, h) in pixels;
* :func:`get_warp_matrix` maps the box to the model input with a
  similarity transform; a positive ``rot`` turns the image content
  counter-clockwise on screen;
* heatmap pixel ``(x, y)`` covers input pixel ``(x, y) * input / heatmap``
  (no half-pixel offset, the "biased" MSRA convention);
* heatmaps are ``(K, H, W)``; sizes are always given as ``(w, h)``.

Everything is numpy except :func:`flip_heatmaps`, which works on torch
tensors for flip test-time augmentation.
"""

import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch

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


def bbox_xyxy2cs(
    bbox: np.ndarray, padding: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Convert ``(x1, y1, x2, y2)`` boxes to center and scale.

    Args:
        bbox (np.ndarray): Boxes in shape (N, 4) or (4,).
        padding (float): Factor multiplied to the box size. Defaults to 1.0.

    Returns:
        tuple:
        - center (np.ndarray): Box centers (x, y) in shape (N, 2) or (2,).
        - scale (np.ndarray): Padded box sizes (w, h) in shape (N, 2) or
          (2,).
    """
    bbox = np.asarray(bbox)
    single = bbox.ndim == 1
    boxes = bbox.reshape(-1, 4)
    center = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    scale = (boxes[:, 2:] - boxes[:, :2]) * padding
    if single:
        return center[0], scale[0]
    return center, scale


def fix_aspect_ratio(scale: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Enlarge box sizes to a fixed ``w / h`` ratio.

    The shorter side (relative to ``aspect_ratio``) is extended; the box
    never shrinks.

    Args:
        scale (np.ndarray): Box sizes (w, h) in shape (N, 2).
        aspect_ratio (float): Target ratio ``w / h``.

    Returns:
        np.ndarray: Box sizes in shape (N, 2) with ``w / h == aspect_ratio``.
    """
    scale = np.asarray(scale)
    w, h = scale[..., :1], scale[..., 1:2]
    wide = w > h * aspect_ratio
    return np.where(
        wide,
        np.concatenate([w, w / aspect_ratio], axis=-1),
        np.concatenate([h * aspect_ratio, h], axis=-1),
    )


def get_warp_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rot: float,
    output_size: Sequence[int],
    shift: Sequence[float] = (0.0, 0.0),
    inv: bool = False,
) -> np.ndarray:
    """Affine matrix that warps a box of the image onto the output size.

    Same transform as mmpose's ``get_warp_matrix``: the box center (moved
    by ``shift * scale``) goes to the output center, the box width
    ``scale[0]`` is resized to the output width (one factor for both axes,
    so ``scale`` should already have the output's aspect ratio), and the
    content is rotated by ``rot`` degrees, counter-clockwise on screen for
    positive values: the box point ``center + (scale[0] / 2) * (sin(rot),
    -cos(rot))`` lands on the top middle of the output.

    Args:
        center (np.ndarray): Box center (x, y) in shape (2,).
        scale (np.ndarray): Box size (w, h) in shape (2,).
        rot (float): Rotation angle in degrees.
        output_size (Sequence[int]): Output size (w, h).
        shift (Sequence[float]): Center shift as a fraction of ``scale``.
            Defaults to (0., 0.).
        inv (bool): If True, return the output -> image matrix instead.
            Defaults to False.

    Returns:
        np.ndarray: The (2, 3) float32 affine matrix.
    """
    assert len(center) == 2 and len(scale) == 2 and len(output_size) == 2
    src_center = np.asarray(center, np.float64) + np.asarray(
        scale, np.float64
    ) * np.asarray(shift, np.float64)
    dst_center = np.array(output_size, np.float64) * 0.5
    ratio = float(output_size[0]) / float(scale[0])
    rad = math.radians(rot)
    cos, sin = math.cos(rad), math.sin(rad)
    # Linear part: undo the rotation, then resize.
    linear = ratio * np.array([[cos, sin], [-sin, cos]])
    if inv:
        linear = np.array([[cos, -sin], [sin, cos]]) / ratio
        src_center, dst_center = dst_center, src_center
    matrix = np.empty((2, 3), np.float64)
    matrix[:, :2] = linear
    matrix[:, 2] = dst_center - linear @ src_center
    return matrix.astype(np.float32)


def affine_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to points.

    Args:
        points (np.ndarray): Points (x, y) in shape (..., 2).
        matrix (np.ndarray): Affine matrix in shape (2, 3).

    Returns:
        np.ndarray: Transformed points in shape (..., 2), with the dtype of
        ``points`` if it is floating, else float32.
    """
    points = np.asarray(points)
    dtype = points.dtype if points.dtype.kind == 'f' else np.float32
    matrix = np.asarray(matrix, np.float64)
    out = points.astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
    return out.astype(dtype)


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
    num_instances, num_keypoints = keypoints.shape[:2]
    width, height = int(heatmap_size[0]), int(heatmap_size[1])
    heatmaps = np.zeros((num_keypoints, height, width), np.float32)
    weights = np.asarray(keypoints_visible, np.float32).copy()
    radius = 3 * sigma
    lo, hi = math.ceil(radius), math.floor(radius)
    offsets = np.arange(-lo, hi + 1, dtype=np.float32)
    gaussian = np.exp(
        -(offsets[None, :] ** 2 + offsets[:, None] ** 2) / (2 * sigma**2)
    )

    for n in range(num_instances):
        for k in range(num_keypoints):
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
    for n in range(keypoints.shape[0]):
        for k in range(keypoints.shape[1]):
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
    for n in range(keypoints.shape[0]):
        for k in range(keypoints.shape[1]):
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


class MSRAHeatmap:
    """MSRA Gaussian heatmap codec (mmpose's ``MSRAHeatmap``).

    Encodes one instance's keypoints (in model-input pixels) as Gaussian
    heatmaps of ``heatmap_size`` and decodes heatmaps back to input pixels
    with argmax plus a quarter-pixel shift, or DARK refinement when
    ``unbiased=True``. See `Simple Baselines
    <https://arxiv.org/abs/1804.06208>`_ and `DARK
    <https://arxiv.org/abs/1910.06278>`_.

    Note: as in mmpose, ``unbiased=True`` also switches encoding to the
    sub-pixel (full-map) Gaussian of DARK.

    Args:
        input_size (Sequence[int]): Model input size (w, h).
        heatmap_size (Sequence[int]): Heatmap size (w, h).
        sigma (float): Gaussian sigma in heatmap pixels.
        unbiased (bool): Use DARK encoding and decoding. Defaults to False.
        blur_kernel_size (int): DARK blur kernel size; should follow
            ``sigma = 0.3 * ((ks - 1) * 0.5 - 1) + 0.8`` (11 for sigma 2,
            17 for sigma 3). Defaults to 11.
    """

    def __init__(
        self,
        input_size: Sequence[int],
        heatmap_size: Sequence[int],
        sigma: float,
        unbiased: bool = False,
        blur_kernel_size: int = 11,
    ) -> None:
        self.input_size = tuple(input_size)
        self.heatmap_size = tuple(heatmap_size)
        self.sigma = sigma
        self.unbiased = unbiased
        self.blur_kernel_size = blur_kernel_size
        self.scale_factor = (
            np.array(input_size, np.float32)
            / np.array(heatmap_size, np.float32)
        ).astype(np.float32)

    def encode(
        self,
        keypoints: np.ndarray,
        keypoints_visible: np.ndarray | None = None,
    ) -> dict:
        """Encode keypoints (input-crop pixels) as heatmaps.

        Args:
            keypoints (np.ndarray): Keypoints in shape (1, K, 2).
            keypoints_visible (np.ndarray, optional): Visibility in shape
                (1, K). Defaults to all visible.

        Returns:
            dict: ``heatmaps`` float32 (K, h, w) and ``keypoint_weights``
            float32 (1, K).
        """
        keypoints = np.asarray(keypoints, np.float32)
        assert keypoints.ndim == 3 and keypoints.shape[0] == 1, (
            'MSRAHeatmap encodes a single instance: keypoints must be '
            f'(1, K, 2), got {keypoints.shape}'
        )
        if keypoints_visible is None:
            keypoints_visible = np.ones(keypoints.shape[:2], np.float32)
        scaled = keypoints[..., :2] / self.scale_factor
        if self.unbiased:
            heatmaps, weights = _unbiased_gaussian_heatmaps(
                self.heatmap_size, scaled, keypoints_visible, self.sigma
            )
        else:
            heatmaps, weights = generate_gaussian_heatmaps(
                self.heatmap_size, scaled, keypoints_visible, self.sigma
            )
        return dict(heatmaps=heatmaps, keypoint_weights=weights)

    def decode(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decode heatmaps to keypoints in input-crop pixels.

        Args:
            heatmaps (np.ndarray): Heatmaps in shape (K, h, w).

        Returns:
            tuple:
            - keypoints (np.ndarray): float32 in shape (1, K, 2).
            - scores (np.ndarray): Heatmap maxima in shape (1, K).
        """
        heatmaps = np.asarray(heatmaps, np.float32)
        locs, vals = get_heatmap_maximum(heatmaps)
        locs, vals = locs[None], vals[None]
        if self.unbiased:
            locs = refine_keypoints_dark(
                locs, heatmaps, blur_kernel_size=self.blur_kernel_size
            )
        else:
            locs = refine_keypoints(locs, heatmaps)
        return (locs * self.scale_factor).astype(np.float32), vals

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(input_size={self.input_size}, '
            f'heatmap_size={self.heatmap_size}, sigma={self.sigma}, '
            f'unbiased={self.unbiased}, '
            f'blur_kernel_size={self.blur_kernel_size})'
        )


def _unbiased_gaussian_heatmaps(
    heatmap_size: Sequence[int],
    keypoints: np.ndarray,
    keypoints_visible: np.ndarray,
    sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """DARK encoding: Gaussians at the exact sub-pixel keypoints.

    Same weights rule as :func:`generate_gaussian_heatmaps` (on the
    unrounded window), but the Gaussian is evaluated on the whole map.
    """
    num_instances, num_keypoints = keypoints.shape[:2]
    width, height = int(heatmap_size[0]), int(heatmap_size[1])
    heatmaps = np.zeros((num_keypoints, height, width), np.float32)
    weights = np.asarray(keypoints_visible, np.float32).copy()
    radius = 3 * sigma
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    for n in range(num_instances):
        for k in range(num_keypoints):
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
