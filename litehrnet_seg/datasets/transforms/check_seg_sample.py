"""Check a loaded segmentation sample (label values, sizes)."""

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..integrity.checks import check_seg_label

__all__ = ['CheckSegSample']


@TRANSFORMS.register_module()
class CheckSegSample(BaseTransform):
    """Check a loaded segmentation sample; raise naming its files if bad.

    Place it right after ``LoadAnnotations``, before any transform that
    resizes or crops. It raises :class:`~..integrity.checks.DataError`
    naming the label (and image) file when the label is not a
    single-channel map, its (H, W) differs from the image's, or it holds
    values that are neither train ids (``0 .. num_classes - 1``) nor
    ``ignore_index`` (see :func:`~..integrity.checks.check_seg_label`).

    Required Keys:

    - img (or img_shape)
    - gt_seg_map
    - img_path, seg_map_path (used in messages only)

    Args:
        num_classes (int): Number of classes. Defaults to 19 (Cityscapes).
        ignore_index (int): Label value of ignored pixels. Defaults to 255.
    """

    def __init__(self, num_classes: int = 19, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        """Check ``results``; return it unchanged if it is valid.

        Args:
            results (dict): Result dict after the loaders.

        Returns:
            dict: ``results``, unchanged.

        Raises:
            KeyError: If no label was loaded (a pipeline error).
            DataError: If the label's shape or values are invalid.
        """
        img_path = results.get('img_path', '<image>')
        if 'gt_seg_map' not in results:
            raise KeyError(
                f'CheckSegSample found no gt_seg_map for image {img_path}: '
                'place it after LoadAnnotations in the pipeline.'
            )
        img = results.get('img')
        check_seg_label(
            np.asarray(results['gt_seg_map']),
            img.shape[:2] if img is not None else results['img_shape'],
            self.num_classes,
            self.ignore_index,
            results.get('seg_map_path', '<label>'),
            img_path,
        )
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(num_classes={self.num_classes}, '
            f'ignore_index={self.ignore_index})'
        )
