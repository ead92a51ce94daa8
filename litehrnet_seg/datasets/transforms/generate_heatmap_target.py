"""``GenerateHeatmapTarget``: MSRA heatmap targets (mmpose's
``GenerateTarget`` with an ``MSRAHeatmap`` encoder)."""

import copy
from collections.abc import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ...codecs import MSRAHeatmap

__all__ = ['GenerateHeatmapTarget']


def _first_present(results: dict, keys: Sequence[str], error: str):
    """The value of the first of ``keys`` that is set (not None).

    Args:
        results (dict): The result dict.
        keys (Sequence[str]): Keys in order of preference.
        error (str): Message of the ``KeyError`` raised when none is set.
    """
    for key in keys:
        value = results.get(key)
        if value is not None:
            return value
    raise KeyError(error)


@TRANSFORMS.register_module()
class GenerateHeatmapTarget(BaseTransform):
    """Encode the crop keypoints as heatmaps and keypoint weights.

    Uses ``transformed_keypoints`` (set by ``TopdownAffine``) when present,
    else ``keypoints``.

    Required Keys:

        - transformed_keypoints or keypoints (1, K, 2)
        - keypoints_visible (1, K)
        - dataset_keypoint_weights or joint_weights (K,) (only with
          ``use_dataset_keypoint_weights``)

    Added Keys:

        - heatmaps (K, h, w) float32
        - keypoint_weights (1, K) float32

    Args:
        encoder (dict): :class:`~litehrnet_seg.codecs.MSRAHeatmap`
            arguments (``input_size``, ``heatmap_size``, ``sigma``, ...); a
            ``type='MSRAHeatmap'`` entry is accepted and ignored.
        use_dataset_keypoint_weights (bool): Multiply the weights by the
            dataset's per-keypoint weights. Defaults to False.
    """

    def __init__(
        self, encoder: dict, use_dataset_keypoint_weights: bool = False
    ) -> None:
        super().__init__()
        cfg = copy.deepcopy(dict(encoder))
        codec_type = cfg.pop('type', 'MSRAHeatmap')
        if codec_type not in ('MSRAHeatmap', MSRAHeatmap):
            raise ValueError(
                f'GenerateHeatmapTarget supports MSRAHeatmap only, got '
                f'{codec_type!r}'
            )
        self.encoder_cfg = encoder
        self.encoder = MSRAHeatmap(**cfg)
        self.use_dataset_keypoint_weights = use_dataset_keypoint_weights

    def transform(self, results: dict) -> dict:
        """Add ``heatmaps`` and ``keypoint_weights``.

        Args:
            results (dict): The result dict.

        Returns:
            dict: The result dict.
        """
        keypoints = _first_present(
            results,
            ('transformed_keypoints', 'keypoints'),
            'GenerateHeatmapTarget needs `transformed_keypoints` or '
            '`keypoints`',
        )
        encoded = self.encoder.encode(
            np.asarray(keypoints, np.float32),
            np.asarray(results['keypoints_visible'], np.float32),
        )
        if self.use_dataset_keypoint_weights:
            weights = _first_present(
                results,
                ('dataset_keypoint_weights', 'joint_weights'),
                'use_dataset_keypoint_weights=True needs '
                '`dataset_keypoint_weights` or `joint_weights` in the '
                'dataset metainfo',
            )
            encoded['keypoint_weights'] = encoded[
                'keypoint_weights'
            ] * np.asarray(weights, np.float32).reshape(1, -1)
        results.update(encoded)
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(encoder={self.encoder_cfg}, '
            'use_dataset_keypoint_weights='
            f'{self.use_dataset_keypoint_weights})'
        )
