"""``GetBBoxCenterScale``: box corners to center and scale (mmpose 1.x)."""

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ...codecs import bbox_xyxy2cs

__all__ = ['GetBBoxCenterScale']


@TRANSFORMS.register_module()
class GetBBoxCenterScale(BaseTransform):
    """Convert ``bbox`` (x1, y1, x2, y2) into center and padded scale.

    If the sample already carries both ``bbox_center`` and ``bbox_scale``
    (e.g. MPII, whose boxes come from center/scale annotations), they are
    kept and only the padding is applied to the scale, as in mmpose.

    Required Keys:

        - bbox (N, 4), unless bbox_center and bbox_scale are given

    Added Keys:

        - bbox_center (N, 2) float32
        - bbox_scale (N, 2) float32

    Args:
        padding (float): Factor multiplied to the box size. Defaults to 1.25.
    """

    def __init__(self, padding: float = 1.25) -> None:
        super().__init__()
        self.padding = padding

    def transform(self, results: dict) -> dict:
        """Add ``bbox_center`` and ``bbox_scale``.

        Args:
            results (dict): The result dict.

        Returns:
            dict: The result dict.
        """
        if 'bbox_center' in results and 'bbox_scale' in results:
            center = np.asarray(results['bbox_center'], np.float32)
            scale = np.asarray(results['bbox_scale'], np.float32)
            scale = scale * self.padding
        else:
            bbox = np.asarray(results['bbox'], np.float32).reshape(-1, 4)
            center, scale = bbox_xyxy2cs(bbox, padding=self.padding)
        results['bbox_center'] = center.reshape(-1, 2).astype(np.float32)
        results['bbox_scale'] = scale.reshape(-1, 2).astype(np.float32)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(padding={self.padding})'
