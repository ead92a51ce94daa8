"""``LoadImageFromFile`` whose every failure is a ``DataError``."""

from mmcv.transforms import LoadImageFromFile
from mmseg.registry import TRANSFORMS

from ..integrity.checks import check_image_shape, read_image

__all__ = ['LoadImageFromFileChecked']


@TRANSFORMS.register_module()
class LoadImageFromFileChecked(LoadImageFromFile):
    """``LoadImageFromFile`` whose errors name the image file.

    A missing file, an empty, truncated or corrupt one (for every
    ``imdecode_backend``) raises :class:`~..integrity.checks.DataError`
    naming ``results['img_path']``, which ``bad_sample_policy='skip'``
    may skip. When the item records the size its annotation gives
    (``recorded_shape``, (H, W), set by the COCO dataset), the decoded
    image must have it.

    Args:
        **kwargs: Arguments of :class:`mmcv.transforms.LoadImageFromFile`
            (``to_float32``, ``color_type``, ``imdecode_backend``,
            ``backend_args``). ``ignore_empty`` is refused: the dataset's
            ``bad_sample_policy='skip'`` skips bad images, with a log.
    """

    def __init__(self, **kwargs) -> None:
        if kwargs.get('ignore_empty'):
            raise ValueError(
                'LoadImageFromFileChecked does not take ignore_empty=True; '
                "set the dataset's bad_sample_policy='skip' instead"
            )
        super().__init__(**kwargs)

    def transform(self, results: dict) -> dict:
        """Load the image of ``results['img_path']``.

        Args:
            results (dict): Result dict with ``img_path``.

        Returns:
            dict: ``results`` with ``img``, ``img_shape`` and ``ori_shape``.

        Raises:
            DataError: If the image is missing, cannot be decoded or has
                another size than recorded.
        """
        path = results['img_path']
        img = read_image(
            path,
            'image',
            self.color_type,
            self.imdecode_backend,
            self.backend_args,
        )
        if results.get('recorded_shape') is not None:
            check_image_shape(img.shape, results['recorded_shape'], path)
        if self.to_float32:
            img = img.astype('float32')
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
