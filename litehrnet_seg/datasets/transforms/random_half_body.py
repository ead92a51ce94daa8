"""``RandomHalfBody``: half-body augmentation (mmpose 1.x)."""

from collections.abc import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS

__all__ = ['RandomHalfBody']


@TRANSFORMS.register_module()
class RandomHalfBody(BaseTransform):
    """Randomly shrink the box to the upper or lower body.

    For each instance with at least ``min_total_keypoints`` visible
    keypoints, with probability ``prob`` the box becomes the padded
    bounding box of the visible upper-body (or lower-body) keypoints:
    center = their mean, scale = (max - min) * ``padding``. The upper body
    is preferred with probability ``upper_prioritized_prob``; a half with
    too few visible keypoints (``min_upper_keypoints`` /
    ``min_lower_keypoints``) is not chosen. Same draws as mmpose 1.x.

    Body part ids come from the arguments when given, else from the
    sample's dataset metainfo (``upper_body_ids`` / ``lower_body_ids``;
    COCO: upper 0-10, lower 11-16; MPII: upper 7-15, lower 0-6).

    Required Keys:

        - keypoints (N, K, 2)
        - keypoints_visible (N, K)
        - bbox_center (N, 2)
        - bbox_scale (N, 2)
        - upper_body_ids, lower_body_ids (unless given as arguments)

    Modified Keys:

        - bbox_center
        - bbox_scale

    Args:
        min_total_keypoints (int): Minimum visible keypoints of an instance
            to consider it. Defaults to 9.
        min_upper_keypoints (int): Minimum visible upper-body keypoints to
            use the upper body. Defaults to 2.
        min_lower_keypoints (int): Minimum visible lower-body keypoints to
            use the lower body. Defaults to 3.
        padding (float): Factor multiplied to the half-body box size.
            Defaults to 1.5.
        prob (float): Probability to apply it to an eligible instance.
            Defaults to 0.3.
        upper_body_ids (Sequence[int], optional): Upper-body keypoint ids.
            Defaults to None (use the sample's metainfo).
        lower_body_ids (Sequence[int], optional): Lower-body keypoint ids.
            Defaults to None (use the sample's metainfo).
        upper_prioritized_prob (float): Probability to prefer the upper
            body when both halves qualify. Defaults to 0.7 (mmpose).
    """

    def __init__(
        self,
        min_total_keypoints: int = 9,
        min_upper_keypoints: int = 2,
        min_lower_keypoints: int = 3,
        padding: float = 1.5,
        prob: float = 0.3,
        upper_body_ids: Sequence[int] | None = None,
        lower_body_ids: Sequence[int] | None = None,
        upper_prioritized_prob: float = 0.7,
    ) -> None:
        super().__init__()
        self.min_total_keypoints = min_total_keypoints
        self.min_upper_keypoints = min_upper_keypoints
        self.min_lower_keypoints = min_lower_keypoints
        self.padding = padding
        self.prob = prob
        self.upper_body_ids = upper_body_ids
        self.lower_body_ids = lower_body_ids
        self.upper_prioritized_prob = upper_prioritized_prob

    def _body_ids(self, results: dict) -> tuple[list[int], list[int]]:
        """Upper and lower body ids from the arguments or the metainfo."""
        upper = self.upper_body_ids
        lower = self.lower_body_ids
        if upper is None:
            upper = results.get('upper_body_ids')
        if lower is None:
            lower = results.get('lower_body_ids')
        if upper is None or lower is None:
            raise KeyError(
                'RandomHalfBody needs upper/lower body keypoint ids: pass '
                '`upper_body_ids` and `lower_body_ids`, or use a dataset '
                'whose metainfo has them'
            )
        return [int(i) for i in upper], [int(i) for i in lower]

    @cache_randomness
    def _random_select_half_body(
        self,
        keypoints_visible: np.ndarray,
        upper_body_ids: list[int],
        lower_body_ids: list[int],
    ) -> list[list[int] | None]:
        """Pick the half-body keypoint ids of each instance (None: keep)."""
        selected = []
        for visible in keypoints_visible:
            indices = None
            if (
                visible.sum() >= self.min_total_keypoints
                and np.random.rand() <= self.prob
            ):
                upper = [i for i in upper_body_ids if visible[i] > 0]
                lower = [i for i in lower_body_ids if visible[i] > 0]
                upper_ok = len(upper) >= self.min_upper_keypoints
                lower_ok = len(lower) >= self.min_lower_keypoints
                prefer_upper = np.random.rand() < self.upper_prioritized_prob
                if upper_ok and lower_ok:
                    indices = upper if prefer_upper else lower
                elif upper_ok:
                    indices = upper
                elif lower_ok:
                    indices = lower
            selected.append(indices)
        return selected

    def transform(self, results: dict) -> dict:
        """Replace the boxes of the selected instances.

        Args:
            results (dict): The result dict.

        Returns:
            dict: The result dict.
        """
        upper_ids, lower_ids = self._body_ids(results)
        visible = np.asarray(results['keypoints_visible'])
        if visible.ndim == 3:  # (N, K, 1)
            visible = visible[..., 0]
        selected = self._random_select_half_body(visible, upper_ids, lower_ids)
        centers = np.array(results['bbox_center'], np.float32, copy=True)
        scales = np.array(results['bbox_scale'], np.float32, copy=True)
        for i, indices in enumerate(selected):
            if indices is None:
                continue
            points = np.asarray(results['keypoints'][i], np.float32)
            points = points[indices, :2]
            centers[i] = points.mean(axis=0)
            scales[i] = (points.max(axis=0) - points.min(axis=0)) * (
                self.padding
            )
        results['bbox_center'] = centers
        results['bbox_scale'] = scales
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}('
            f'min_total_keypoints={self.min_total_keypoints}, '
            f'min_upper_keypoints={self.min_upper_keypoints}, '
            f'min_lower_keypoints={self.min_lower_keypoints}, '
            f'padding={self.padding}, prob={self.prob}, '
            f'upper_body_ids={self.upper_body_ids}, '
            f'lower_body_ids={self.lower_body_ids}, '
            f'upper_prioritized_prob={self.upper_prioritized_prob})'
        )
