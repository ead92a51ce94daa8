"""MSRA Gaussian heatmap codec for top-down pose estimation.

Follows mmpose 1.x (``mmpose/codecs/msra_heatmap.py``) in names,
conventions and numerics, so that mmpose users get the same targets and
the same decoded keypoints. The helpers it composes live in
:mod:`.heatmap_encoding` and :mod:`.heatmap_decoding`; the box and warp
geometry of the top-down pipeline in :mod:`.keypoint_geometry`.
"""

from collections.abc import Sequence

import numpy as np

from .heatmap_decoding import (
    get_heatmap_maximum,
    refine_keypoints,
    refine_keypoints_dark,
)
from .heatmap_encoding import (
    generate_gaussian_heatmaps,
    generate_unbiased_gaussian_heatmaps,
)


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
            heatmaps, weights = generate_unbiased_gaussian_heatmaps(
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
