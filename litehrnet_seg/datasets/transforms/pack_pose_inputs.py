"""``PackPoseInputs``: pack a top-down sample into a ``PoseDataSample``."""

from collections.abc import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData, PixelData
from mmseg.registry import TRANSFORMS

from ...structures import PoseDataSample

__all__ = ['PackPoseInputs']


def _image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """HWC (or HW) array to a contiguous CHW tensor of the same dtype."""
    if img.ndim == 2:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class PackPoseInputs(BaseTransform):
    """Pack the image and annotations for the pose model (mmpose 1.x).

    Output ``inputs`` is the image as a CHW tensor of the loaded dtype and
    channel order (uint8 BGR from ``LoadImageFromFile``; the data
    preprocessor converts and normalizes). ``data_samples`` is a
    :class:`~litehrnet_seg.structures.PoseDataSample` with:

    * ``gt_instances``: ``bboxes`` (from ``bbox``), ``bbox_scores``,
      ``keypoints`` and ``keypoints_visible`` in the original image (numpy,
      as mmpose), plus ``bbox_centers`` / ``bbox_scales`` when present;
    * ``gt_instance_labels``: ``keypoint_weights`` tensor (when present);
    * ``gt_fields``: ``heatmaps`` tensor (when present);
    * metainfo: the ``meta_keys`` found in the results.

    Required Keys:

        - img
        - the keys above, each optional

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo when
            present. Defaults to the ``PoseDataSample`` metainfo keys.
    """

    instance_mapping = {
        'bbox': 'bboxes',
        'bbox_score': 'bbox_scores',
        'keypoints': 'keypoints',
        'keypoints_visible': 'keypoints_visible',
        'bbox_center': 'bbox_centers',
        'bbox_scale': 'bbox_scales',
    }

    def __init__(
        self,
        meta_keys: Sequence[str] = (
            'id',
            'img_id',
            'img_path',
            'category_id',
            'ori_shape',
            'img_shape',
            'input_size',
            'input_center',
            'input_scale',
            'flip',
            'flip_direction',
            'flip_indices',
            'head_size',
            'dataset_name',
        ),
    ) -> None:
        super().__init__()
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack the sample.

        Args:
            results (dict): The result dict.

        Returns:
            dict: ``inputs`` (torch.Tensor, C x H x W) and ``data_samples``
            (PoseDataSample).
        """
        sample = PoseDataSample()

        gt_instances = InstanceData()
        for key, name in self.instance_mapping.items():
            if results.get(key) is not None:
                gt_instances.set_field(np.asarray(results[key]), name)
        sample.gt_instances = gt_instances

        gt_labels = InstanceData()
        if results.get('keypoint_weights') is not None:
            gt_labels.keypoint_weights = torch.from_numpy(
                np.asarray(results['keypoint_weights'], np.float32)
            )
        sample.gt_instance_labels = gt_labels

        if results.get('heatmaps') is not None:
            sample.gt_fields = PixelData(
                heatmaps=torch.from_numpy(
                    np.ascontiguousarray(results['heatmaps'], np.float32)
                )
            )

        sample.set_metainfo(
            {k: results[k] for k in self.meta_keys if k in results}
        )
        return dict(
            inputs=_image_to_tensor(results['img']), data_samples=sample
        )

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
