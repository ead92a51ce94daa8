"""Transforms that turn bad segmentation samples into clear errors.

* :class:`CheckSegSample` goes right after ``LoadAnnotations`` and checks
  that image and label agree in size and that the label holds only train
  ids or the ignore index.
* :class:`LoadImageFromFileChecked` and :class:`LoadAnnotationsChecked` are
  drop-in replacements for ``LoadImageFromFile`` and ``LoadAnnotations``
  whose decoding errors name the file. mmcv's ``LoadImageFromFile`` names
  it for most corrupt files, but not for empty (0-byte) files or with the
  ``pillow`` backend; mmseg's ``LoadAnnotations`` never names it (pillow
  raises "cannot identify image file <_io.BytesIO ...>", cv2 "'NoneType'
  object has no attribute 'squeeze'").
"""

import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

__all__ = [
    'CheckSegSample',
    'LoadAnnotationsChecked',
    'LoadImageFromFileChecked',
]

# How many offending label values an error message lists.
MAX_LISTED_VALUES = 10


def _decode_error(kind: str, path: str, err: Exception) -> OSError:
    """Build the error for a file that exists but cannot be decoded."""
    return OSError(
        f'Cannot decode {kind} file {path}: it is empty, truncated, corrupt '
        f'or not an image ({type(err).__name__}: {str(err).strip()}). '
        'Re-download or re-generate it.'
    )


@TRANSFORMS.register_module()
class LoadImageFromFileChecked(LoadImageFromFile):
    """``LoadImageFromFile`` whose errors name the image file.

    Any failure to decode the image (empty, truncated or corrupt file, for
    every ``imdecode_backend``) raises ``OSError`` naming
    ``results['img_path']``. A missing file still raises mmengine's
    ``FileNotFoundError``, which names it already.

    Args:
        **kwargs: Arguments of :class:`mmcv.transforms.LoadImageFromFile`
            (``to_float32``, ``color_type``, ``imdecode_backend``,
            ``ignore_empty``, ``backend_args``).
    """

    def transform(self, results: dict) -> dict | None:
        """Load the image of ``results['img_path']``.

        Args:
            results (dict): Result dict with ``img_path``.

        Returns:
            dict | None: ``results`` with ``img``, ``img_shape`` and
            ``ori_shape``; None if loading failed and ``ignore_empty``.
        """
        try:
            return super().transform(results)
        except FileNotFoundError:
            raise  # already names the file
        except Exception as err:
            # Includes mmcv's own "failed to load image" AssertionError, so
            # that every undecodable image gives the same error type.
            raise _decode_error('image', results['img_path'], err) from err


@TRANSFORMS.register_module()
class LoadAnnotationsChecked(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` whose decoding errors name the label file.

    A label map that cannot be decoded raises ``OSError`` naming
    ``results['seg_map_path']``; a missing file still raises mmengine's
    ``FileNotFoundError``, which names it already.

    Args:
        **kwargs: Arguments of :class:`mmseg.datasets.transforms.
            LoadAnnotations` (``reduce_zero_label``, ``backend_args``,
            ``imdecode_backend``).
    """

    def _load_seg_map(self, results: dict) -> None:
        try:
            super()._load_seg_map(results)
        except (FileNotFoundError, AssertionError):
            # Missing file (named already) or the reduce_zero_label
            # consistency check: not decoding errors.
            raise
        except Exception as err:
            raise _decode_error('label', results['seg_map_path'], err) from err


@TRANSFORMS.register_module()
class CheckSegSample(BaseTransform):
    """Check a loaded segmentation sample; raise naming its files if bad.

    Place it right after ``LoadAnnotations``, before any transform that
    resizes or crops. It raises ``ValueError`` naming the image and/or
    label file when:

    * the label is not a single-channel map, or its (H, W) differs from the
      image's;
    * the label holds values that are neither train ids
      (``0 .. num_classes - 1``) nor ``ignore_index``; the message lists
      the offending values (up to 10) with their pixel counts.

    Values are checked after ``LoadAnnotations`` applied the dataset's
    ``label_map`` / ``reduce_zero_label``. The check costs one
    ``np.bincount`` over the label (``np.unique`` for non-uint8 labels).

    Required Keys:

    - img (or img_shape)
    - gt_seg_map
    - img_path, seg_map_path (used in messages only)

    Args:
        num_classes (int): Number of classes; valid train ids are
            ``0 .. num_classes - 1``. Defaults to 19 (Cityscapes).
        ignore_index (int): Label value that marks ignored pixels.
            Defaults to 255.
    """

    def __init__(self, num_classes: int = 19, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        """Check ``results``; return it unchanged if it is valid.

        Args:
            results (dict): Result dict after ``LoadImageFromFile`` and
                ``LoadAnnotations``.

        Returns:
            dict: ``results``, unchanged.

        Raises:
            KeyError: If no label was loaded.
            ValueError: If the label's shape or values are invalid.
        """
        img_path = results.get('img_path', '<image>')
        seg_path = results.get('seg_map_path', '<label>')
        if 'gt_seg_map' not in results:
            raise KeyError(
                f'CheckSegSample found no gt_seg_map for image {img_path}: '
                'place it after LoadAnnotations in the pipeline.'
            )
        label = np.asarray(results['gt_seg_map'])

        if label.ndim != 2:
            raise ValueError(
                f'label {seg_path} has shape {label.shape}, expected a '
                'single-channel (H, W) map of train ids (a colour or '
                'instance map given by a wrong seg_map_suffix?)'
            )
        img = results.get('img')
        img_hw = img.shape[:2] if img is not None else results['img_shape']
        if tuple(img_hw) != label.shape:
            raise ValueError(
                f'image {img_path} is {img_hw[0]}x{img_hw[1]} but label '
                f'{seg_path} is {label.shape[0]}x{label.shape[1]} (HxW); '
                'they must have the same size.'
            )

        values, counts = self._value_counts(label)
        bad = (values < 0) | (values >= self.num_classes)
        bad &= values != self.ignore_index
        if bad.any():
            bad_values, bad_counts = values[bad], counts[bad]
            listed = ', '.join(
                f'{v} ({c} px)'
                for v, c in zip(
                    bad_values[:MAX_LISTED_VALUES].tolist(),
                    bad_counts[:MAX_LISTED_VALUES].tolist(),
                    strict=True,
                )
            )
            if len(bad_values) > MAX_LISTED_VALUES:
                listed += f', ... ({len(bad_values)} values in all)'
            raise ValueError(
                f'label {seg_path} (image {img_path}) holds invalid values '
                f'{listed}; valid are train ids 0..{self.num_classes - 1} '
                f'and the ignore index {self.ignore_index}. For Cityscapes, '
                'use the *_gtFine_labelTrainIds.png maps made by '
                '`python tools/dataset_converters/cityscapes.py '
                'data/cityscapes`, not the raw *_gtFine_labelIds.png.'
            )
        return results

    @staticmethod
    def _value_counts(label: np.ndarray) -> tuple:
        """Distinct values in ``label`` and how many pixels hold each."""
        if label.dtype == np.uint8:
            # Linear time, no sort: much cheaper than np.unique.
            counts = np.bincount(label.ravel(), minlength=256)
            values = np.flatnonzero(counts)
            return values, counts[values]
        return np.unique(label, return_counts=True)

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(num_classes={self.num_classes}, '
            f'ignore_index={self.ignore_index})'
        )
