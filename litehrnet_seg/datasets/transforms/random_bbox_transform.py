"""``RandomBBoxTransform``: random box shift, resize, rotation (mmpose)."""

from collections.abc import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS
from scipy.stats import truncnorm

__all__ = ['RandomBBoxTransform']


@TRANSFORMS.register_module()
class RandomBBoxTransform(BaseTransform):
    r"""Randomly shift, resize and rotate the boxes (mmpose 1.x semantics).

    Each draw is a standard normal truncated to [-1, 1] (``t``), applied
    with its own probability, per instance:

    * shift: ``center += t * shift_factor * scale`` (t per axis);
    * resize: ``scale *= mu + t * sigma`` with ``mu`` / ``sigma`` the
      middle / half width of ``scale_factor``, i.e. within
      ``[scale_factor[0], scale_factor[1]]``;
    * rotation: ``t * rotate_factor`` degrees (0 when not applied).

    Required Keys:

        - bbox_center (N, 2)
        - bbox_scale (N, 2)

    Modified Keys:

        - bbox_center
        - bbox_scale

    Added Keys:

        - bbox_rotation (N,) degrees

    Args:
        shift_factor (float): Max shift as a fraction of the box size.
            Defaults to 0.16.
        shift_prob (float): Probability to shift. Defaults to 0.3.
        scale_factor (Sequence[float]): Resize range (min, max). Defaults
            to (0.5, 1.5).
        scale_prob (float): Probability to resize. Defaults to 1.0.
        rotate_factor (float): Max rotation in degrees. Defaults to 80.0.
        rotate_prob (float): Probability to rotate. Defaults to 0.6.
    """

    def __init__(
        self,
        shift_factor: float = 0.16,
        shift_prob: float = 0.3,
        scale_factor: Sequence[float] = (0.5, 1.5),
        scale_prob: float = 1.0,
        rotate_factor: float = 80.0,
        rotate_prob: float = 0.6,
    ) -> None:
        super().__init__()
        assert len(scale_factor) == 2 and scale_factor[0] <= scale_factor[1]
        self.shift_factor = shift_factor
        self.shift_prob = shift_prob
        self.scale_factor = tuple(scale_factor)
        self.scale_prob = scale_prob
        self.rotate_factor = rotate_factor
        self.rotate_prob = rotate_prob

    @staticmethod
    def _truncnorm(size: tuple) -> np.ndarray:
        """Standard normal samples truncated to [-1, 1], float32."""
        return truncnorm.rvs(-1.0, 1.0, size=size).astype(np.float32)

    @cache_randomness
    def _get_transform_params(
        self, num_bboxes: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw shift (N, 2), resize (N, 1) and rotation (N,) parameters."""
        offset = self._truncnorm((num_bboxes, 2)) * self.shift_factor
        offset = np.where(
            np.random.rand(num_bboxes, 1) < self.shift_prob, offset, 0.0
        )
        low, high = self.scale_factor
        mu, sigma = (high + low) * 0.5, (high - low) * 0.5
        scale = self._truncnorm((num_bboxes, 1)) * sigma + mu
        scale = np.where(
            np.random.rand(num_bboxes, 1) < self.scale_prob, scale, 1.0
        )
        rotate = self._truncnorm((num_bboxes,)) * self.rotate_factor
        rotate = np.where(
            np.random.rand(num_bboxes) < self.rotate_prob, rotate, 0.0
        )
        return (
            offset.astype(np.float32),
            scale.astype(np.float32),
            rotate.astype(np.float32),
        )

    def transform(self, results: dict) -> dict:
        """Jitter the boxes and set ``bbox_rotation``.

        Args:
            results (dict): The result dict.

        Returns:
            dict: The result dict.
        """
        center = np.asarray(results['bbox_center'], np.float32)
        scale = np.asarray(results['bbox_scale'], np.float32)
        offset, factor, rotate = self._get_transform_params(scale.shape[0])
        results['bbox_center'] = center + offset * scale
        results['bbox_scale'] = scale * factor
        results['bbox_rotation'] = rotate
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(shift_factor={self.shift_factor}, '
            f'shift_prob={self.shift_prob}, '
            f'scale_factor={self.scale_factor}, '
            f'scale_prob={self.scale_prob}, '
            f'rotate_factor={self.rotate_factor}, '
            f'rotate_prob={self.rotate_prob})'
        )
