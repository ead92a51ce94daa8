"""``TopdownRandomFlip``: mmpose 1.x ``RandomFlip`` for top-down pose.

Named so because mmseg already registers ``RandomFlip`` in the same
registry.
"""

from collections.abc import Sequence

import numpy as np
from mmcv.image import imflip
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS

__all__ = ['TopdownRandomFlip']

_DIRECTIONS = ('horizontal', 'vertical', 'diagonal')


def _flip_xyxy(bbox: np.ndarray, w: int, h: int, direction: str):
    """Flip (..., 4) xyxy boxes in an image of size (w, h)."""
    out = np.array(bbox, copy=True)
    if direction in ('horizontal', 'diagonal'):
        out[..., 0] = w - 1 - bbox[..., 2]
        out[..., 2] = w - 1 - bbox[..., 0]
    if direction in ('vertical', 'diagonal'):
        out[..., 1] = h - 1 - bbox[..., 3]
        out[..., 3] = h - 1 - bbox[..., 1]
    return out


def _flip_xy(points: np.ndarray, w: int, h: int, direction: str):
    """Flip (..., 2) points in an image of size (w, h)."""
    out = np.array(points, copy=True)
    if direction in ('horizontal', 'diagonal'):
        out[..., 0] = w - 1 - points[..., 0]
    if direction in ('vertical', 'diagonal'):
        out[..., 1] = h - 1 - points[..., 1]
    return out


@TRANSFORMS.register_module()
class TopdownRandomFlip(BaseTransform):
    """Randomly flip the image, box and keypoints.

    Coordinates follow mmpose: ``x -> w - 1 - x`` (``y -> h - 1 - y``
    vertically). For horizontal and vertical flips the keypoints (and their
    visibility) are reordered with ``flip_indices`` so that left and right
    swap; a diagonal flip (a 180 degree rotation) keeps the order, as in
    mmpose.

    Required Keys:

        - img
        - img_shape (optional, else taken from img)
        - flip_indices (when keypoints are present)
        - bbox (optional)
        - bbox_center (optional)
        - keypoints (optional)
        - keypoints_visible (optional)

    Modified Keys:

        - img
        - img_shape is unchanged (a flip keeps the size)
        - bbox, bbox_center, keypoints, keypoints_visible (when present)

    Added Keys:

        - flip (bool)
        - flip_direction (str | None)

    Args:
        prob (float | list[float]): Flip probability, or one probability
            per direction when ``direction`` is a list. Defaults to 0.5.
        direction (str | list[str]): ``'horizontal'``, ``'vertical'`` or
            ``'diagonal'``, or a list of them. Defaults to
            ``'horizontal'``.
    """

    def __init__(
        self,
        prob: float | Sequence[float] = 0.5,
        direction: str | Sequence[str] = 'horizontal',
    ) -> None:
        super().__init__()
        directions = [direction] if isinstance(direction, str) else direction
        directions = list(directions)
        assert directions and set(directions) <= set(_DIRECTIONS), (
            f'direction must be in {_DIRECTIONS}, got {direction}'
        )
        if isinstance(prob, (int, float)):
            assert 0 <= prob <= 1, f'prob must be in [0, 1], got {prob}'
            probs = [float(prob) / len(directions)] * len(directions)
        else:
            probs = [float(p) for p in prob]
            assert len(probs) == len(directions), (
                'prob and direction lists must have the same length'
            )
            assert all(p >= 0 for p in probs) and sum(probs) <= 1
        self.prob = prob
        self.direction = direction
        self._directions = directions
        self._probs = probs

    @cache_randomness
    def _choose_direction(self) -> str | None:
        """Draw a flip direction, or None for no flip."""
        choices = self._directions + [None]
        probs = self._probs + [max(0.0, 1.0 - sum(self._probs))]
        probs = np.asarray(probs) / np.sum(probs)
        return choices[np.random.choice(len(choices), p=probs)]

    def transform(self, results: dict) -> dict:
        """Flip the sample at random.

        Args:
            results (dict): The result dict.

        Returns:
            dict: The result dict.
        """
        direction = self._choose_direction()
        results['flip'] = direction is not None
        results['flip_direction'] = direction
        if direction is None:
            return results

        h, w = results.get('img_shape', results['img'].shape[:2])[:2]
        results['img'] = imflip(results['img'], direction=direction)
        if results.get('bbox') is not None:
            results['bbox'] = _flip_xyxy(results['bbox'], w, h, direction)
        if results.get('bbox_center') is not None:
            results['bbox_center'] = _flip_xy(
                results['bbox_center'], w, h, direction
            )
        if results.get('keypoints') is not None:
            keypoints = _flip_xy(results['keypoints'], w, h, direction)
            visible = results.get('keypoints_visible')
            if direction != 'diagonal':
                order = list(results['flip_indices'])
                assert len(order) == keypoints.shape[-2], (
                    f'{len(order)} flip_indices for '
                    f'{keypoints.shape[-2]} keypoints'
                )
                keypoints = keypoints[..., order, :]
                if visible is not None:
                    visible = np.asarray(visible)[..., order]
            results['keypoints'] = keypoints
            if visible is not None:
                results['keypoints_visible'] = visible
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(prob={self.prob}, '
            f'direction={self.direction!r})'
        )
