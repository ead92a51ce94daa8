"""Data sample for top-down pose estimation (one person crop per sample).

Same layout as mmpose 1.x's ``PoseDataSample`` so that mmpose users find
their fields where they expect them.
"""

from mmengine.structures import BaseDataElement, InstanceData, PixelData


class PoseDataSample(BaseDataElement):
    """One top-down sample: ground truth, targets and predictions.

    Fields (all optional):
        gt_instances (InstanceData): ``bboxes`` (1, 4) xyxy in the original
            image, ``bbox_scores`` (1,), ``keypoints`` (1, K, 2) in the
            original image, ``keypoints_visible`` (1, K).
        gt_instance_labels (InstanceData): ``keypoint_weights`` (1, K)
            tensor, the per-keypoint loss weights.
        gt_fields (PixelData): ``heatmaps`` (K, h, w) tensor target.
        pred_instances (InstanceData): ``keypoints`` (1, K, 2) in the
            original image, ``keypoint_scores`` (1, K), plus ``bboxes``,
            ``bbox_scores`` and ``areas`` copied from the input box.
        pred_fields (PixelData): ``heatmaps`` (K, h, w), when kept.

    Metainfo (set by the pipeline): ``img_id``, ``img_path``, ``id``
    (annotation id), ``category_id``, ``ori_shape``, ``img_shape``,
    ``input_size`` (w, h), ``input_center`` (2,), ``input_scale`` (2,),
    ``flip_indices``, ``head_size`` (MPII), ``dataset_name``.
    """

    @property
    def gt_instances(self) -> InstanceData:
        return self._gt_instances

    @gt_instances.setter
    def gt_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_gt_instances', dtype=InstanceData)

    @gt_instances.deleter
    def gt_instances(self) -> None:
        del self._gt_instances

    @property
    def gt_instance_labels(self) -> InstanceData:
        return self._gt_instance_labels

    @gt_instance_labels.setter
    def gt_instance_labels(self, value: InstanceData) -> None:
        self.set_field(value, '_gt_instance_labels', dtype=InstanceData)

    @gt_instance_labels.deleter
    def gt_instance_labels(self) -> None:
        del self._gt_instance_labels

    @property
    def gt_fields(self) -> PixelData:
        return self._gt_fields

    @gt_fields.setter
    def gt_fields(self, value: PixelData) -> None:
        self.set_field(value, '_gt_fields', dtype=PixelData)

    @gt_fields.deleter
    def gt_fields(self) -> None:
        del self._gt_fields

    @property
    def pred_instances(self) -> InstanceData:
        return self._pred_instances

    @pred_instances.setter
    def pred_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_pred_instances', dtype=InstanceData)

    @pred_instances.deleter
    def pred_instances(self) -> None:
        del self._pred_instances

    @property
    def pred_fields(self) -> PixelData:
        return self._pred_fields

    @pred_fields.setter
    def pred_fields(self, value: PixelData) -> None:
        self.set_field(value, '_pred_fields', dtype=PixelData)

    @pred_fields.deleter
    def pred_fields(self) -> None:
        del self._pred_fields
