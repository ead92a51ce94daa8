"""``TopdownAffine``: crop the box to the model input (mmpose 1.x)."""

from collections.abc import Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ...codecs import affine_points, fix_aspect_ratio, get_warp_matrix

__all__ = ['TopdownAffine']


@TRANSFORMS.register_module()
class TopdownAffine(BaseTransform):
    """Warp the (rotated) box region of the image to ``input_size``.

    The box scale is first enlarged to the input aspect ratio, then the
    image is warped with :func:`~litehrnet_seg.codecs.get_warp_matrix`
    (bilinear, zero border) and the keypoints are mapped into the crop as
    ``transformed_keypoints``. ``keypoints`` stay in the original image
    (the metrics need them). ``img_shape`` is left unchanged, as in mmpose.

    Required Keys:

        - img
        - bbox_center (1, 2)
        - bbox_scale (1, 2)
        - bbox_rotation (optional, (1,) degrees)
        - keypoints (optional)

    Modified Keys:

        - img
        - bbox_scale

    Added Keys:

        - input_size (w, h)
        - input_center (2,)
        - input_scale (2,)
        - transformed_keypoints (when keypoints are present)

    Args:
        input_size (Sequence[int]): Model input size (w, h).
        use_udp (bool): Unbiased data processing; not supported, must be
            False. Defaults to False.
    """

    def __init__(
        self, input_size: Sequence[int], use_udp: bool = False
    ) -> None:
        super().__init__()
        assert len(input_size) == 2 and all(
            isinstance(v, int) for v in input_size
        ), f'input_size must be two ints (w, h), got {input_size}'
        if use_udp:
            raise NotImplementedError(
                'TopdownAffine(use_udp=True) is not supported'
            )
        self.input_size = tuple(input_size)
        self.use_udp = use_udp

    def transform(self, results: dict) -> dict:
        """Crop and resize the box region.

        Args:
            results (dict): The result dict.

        Returns:
            dict: The result dict.
        """
        w, h = self.input_size
        scales = fix_aspect_ratio(
            np.asarray(results['bbox_scale'], np.float32), w / h
        ).astype(np.float32)
        results['bbox_scale'] = scales
        centers = np.asarray(results['bbox_center'], np.float32)
        assert centers.shape[0] == 1, (
            'TopdownAffine handles one instance per sample, got bbox_center '
            f'of shape {centers.shape}'
        )
        center, scale = centers[0], scales[0]
        rotation = results.get('bbox_rotation')
        rot = (
            float(np.asarray(rotation).reshape(-1)[0])
            if (rotation is not None)
            else 0.0
        )

        matrix = get_warp_matrix(center, scale, rot, output_size=(w, h))
        results['img'] = cv2.warpAffine(
            results['img'], matrix, (w, h), flags=cv2.INTER_LINEAR
        )
        if results.get('keypoints') is not None:
            results['transformed_keypoints'] = affine_points(
                np.asarray(results['keypoints'], np.float32), matrix
            )
        results['input_size'] = (w, h)
        results['input_center'] = center
        results['input_scale'] = scale
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(input_size={self.input_size}, '
            f'use_udp={self.use_udp})'
        )
