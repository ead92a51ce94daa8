"""mmseg's ``LoadAnnotations`` whose every failure is a ``DataError``."""

import numpy as np
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from ..integrity.checks import read_image

__all__ = ['LoadAnnotationsChecked']


@TRANSFORMS.register_module()
class LoadAnnotationsChecked(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` whose errors name the label file.

    A missing, empty or undecodable label map raises
    :class:`~..integrity.checks.DataError` naming
    ``results['seg_map_path']`` (mmseg's names no file: pillow says
    "cannot identify image file <_io.BytesIO ...>"). The map is then
    converted as mmseg does (uint8, ``reduce_zero_label``, ``label_map``).

    Args:
        **kwargs: Arguments of :class:`mmseg.datasets.transforms.
            LoadAnnotations` (``reduce_zero_label``, ``backend_args``,
            ``imdecode_backend``).
    """

    def transform(self, results: dict) -> dict:
        """Load the label map of ``results['seg_map_path']``.

        Args:
            results (dict): Result dict with ``seg_map_path``,
                ``reduce_zero_label`` and ``seg_fields``.

        Returns:
            dict: ``results`` with ``gt_seg_map``.

        Raises:
            DataError: If the label map is missing or cannot be decoded.
            ValueError: If ``reduce_zero_label`` differs from the
                dataset's (a config error, not bad data).
        """
        label = read_image(
            results['seg_map_path'],
            'label',
            'unchanged',
            self.imdecode_backend,
            self.backend_args,
        )
        label = label.squeeze().astype(np.uint8)
        reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label not in (None, reduce_zero_label):
            raise ValueError(
                f'LoadAnnotationsChecked(reduce_zero_label='
                f'{self.reduce_zero_label}) but the dataset has '
                f'reduce_zero_label={reduce_zero_label}'
            )
        if reduce_zero_label:
            label = label - 1  # uint8: 0 wraps to 255, the ignore index
            label[label == 254] = 255
        if results.get('label_map') is not None:
            original = label.copy()
            for old_id, new_id in results['label_map'].items():
                label[original == old_id] = new_id
        results['gt_seg_map'] = label
        results.setdefault('seg_fields', []).append('gt_seg_map')
        return results
