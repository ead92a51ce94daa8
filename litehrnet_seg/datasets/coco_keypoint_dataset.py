"""COCO person keypoints for top-down pose estimation (mmpose 1.x names)."""

import os.path as osp

import numpy as np
from mmseg.registry import DATASETS

from .base_pose_dataset import BaseTopdownPoseDataset, load_json
from .integrity import (
    DataError,
    check_coco_annotation,
    check_coco_image,
)

# fmt: off
_COCO_JOINT_WEIGHTS = [
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2,
    1.5, 1.5, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5,
]
_COCO_SIGMAS = [
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
]
_COCO_SKELETON_LINKS = [
    [15, 13], [13, 11], [16, 14], [14, 12], [11, 12], [5, 11], [6, 12],
    [5, 6], [5, 7], [6, 8], [7, 9], [8, 10], [1, 2], [0, 1], [0, 2],
    [1, 3], [2, 4], [3, 5], [4, 6],
]
# fmt: on

COCO_METAINFO = dict(
    dataset_name='coco',
    classes=('person',),
    keypoint_names=[
        'nose',
        'left_eye',
        'right_eye',
        'left_ear',
        'right_ear',
        'left_shoulder',
        'right_shoulder',
        'left_elbow',
        'right_elbow',
        'left_wrist',
        'right_wrist',
        'left_hip',
        'right_hip',
        'left_knee',
        'right_knee',
        'left_ankle',
        'right_ankle',
    ],
    flip_indices=[0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15],
    upper_body_ids=list(range(0, 11)),
    lower_body_ids=list(range(11, 17)),
    joint_weights=_COCO_JOINT_WEIGHTS,
    sigmas=_COCO_SIGMAS,
    # 0-based version of the COCO category's 1-based 'skeleton'.
    skeleton_links=_COCO_SKELETON_LINKS,
)


@DATASETS.register_module()
class CocoDataset(BaseTopdownPoseDataset):
    """COCO person keypoints, top-down: one data item per person.

    Same name, arguments and item layout as mmpose 1.x's ``CocoDataset``
    (top-down mode only). Each item holds:

    - ``img_path``, ``img_id``, ``id`` (annotation id, or a running index
      for detections), ``category_id``
    - ``bbox`` (1, 4) float32 xyxy (COCO xywh converted and, for ground
      truth, clipped to the image), ``bbox_score`` (1,) (ones for ground
      truth, the detector's score for detections)
    - ``keypoints`` (1, K, 2) float32, ``keypoints_visible`` (1, K) float32
      (``min(1, v)``), ``num_keypoints``, ``area``, ``iscrowd``
    - ``recorded_shape``: the image's (height, width) in the json, which
      ``LoadImageFromFileChecked`` compares with the decoded image
    - copied from the metainfo by :meth:`get_data_info`: ``flip_indices``,
      ``flip_pairs``, ``upper_body_ids``, ``lower_body_ids``,
      ``dataset_keypoint_weights``, ``dataset_name``.

    Ground-truth instances that are crowds, have no labelled keypoint or
    have an empty box are skipped (in test mode too, as mmpose does, so
    that evaluating on ground-truth boxes matches mmpose).

    Every annotation is checked when the file is loaded
    (:func:`~.integrity.checks.check_coco_annotation`: ``image_id`` names
    an image, ``keypoints`` holds ``3 * num_keypoints`` finite numbers with
    flags 0/1/2, ``bbox`` is 4 finite numbers with ``w, h >= 0``). Failing
    annotations raise a ``DataError`` naming the file, annotation id and
    field, or are logged and dropped with ``bad_sample_policy='skip'``.

    Args:
        ann_file (str): COCO person-keypoints json (e.g.
            ``annotations/person_keypoints_val2017.json``). Joined with
            ``data_root`` when relative.
        bbox_file (str, optional): Person detections in COCO results format
            (list of {image_id, category_id, bbox (xywh), score}). Only in
            test mode: each person detection becomes an item with zero
            keypoints (all invisible). Used as given (not joined with
            ``data_root``), as in mmpose. Default: None.
        **kwargs: See :class:`BaseTopdownPoseDataset` (``data_mode``,
            ``metainfo``, ``bad_sample_policy``) and mmengine's
            ``BaseDataset``.
    """

    METAINFO: dict = COCO_METAINFO

    def __init__(
        self, ann_file: str = '', bbox_file: str | None = None, **kwargs
    ) -> None:
        if bbox_file and not kwargs.get('test_mode', False):
            # Detections carry no keypoints: nothing to train on.
            raise ValueError(
                f'{type(self).__name__}: bbox_file is only supported with '
                f'test_mode=True (got bbox_file={bbox_file!r})'
            )
        self.bbox_file = bbox_file
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> list[dict]:
        """Load the items from ``bbox_file`` if set, else from ``ann_file``.

        Returns:
            list[dict]: One item per person.
        """
        images = self._load_coco_images_and_annotations()
        if self.bbox_file:
            return self._load_detection_results(images)
        data_list = []
        for img, anns in images.values():
            for ann in anns:
                item = self.parse_data_info(ann, img)
                if self._is_valid_instance(item):
                    data_list.append(item)
        return data_list

    def _load_coco_images_and_annotations(
        self,
    ) -> dict[int, tuple[dict, list[dict]]]:
        """Read and check ``ann_file``.

        Returns:
            dict: image id -> (image record, its annotations), in file
            order.
        """
        name = type(self).__name__
        path = self.ann_file
        coco = load_json(path, 'COCO annotation file', name)
        if not isinstance(coco, dict) or not isinstance(
            coco.get('images'), list
        ):
            raise DataError(
                f'{name}: {path} is not a COCO annotation file (expected a '
                'json object with an "images" list)',
                path,
                'unreadable_annotation',
            )
        images: dict[int, tuple[dict, list[dict]]] = {}
        for i, img in enumerate(coco['images']):
            check_coco_image(img, i, path)
            images[img['id']] = (img, [])
        if self.bbox_file:
            # Detection mode needs only the image records.
            return images
        anns = coco.get('annotations')
        if not isinstance(anns, list):
            raise DataError(
                f'{name}: {path} has no "annotations" list; ground-truth '
                'keypoints are needed unless bbox_file is set',
                path,
                'missing_field',
                'annotations',
            )
        num_keypoints = self.metainfo['num_keypoints']
        errors = []
        for ann in anns:
            try:
                check_coco_annotation(ann, images, num_keypoints, path)
            except DataError as err:
                errors.append(err)
                continue
            images[ann['image_id']][1].append(ann)
        self.reject_samples(errors, len(anns))
        return images

    def parse_data_info(self, ann: dict, img: dict) -> dict:
        """Build the item of one ground-truth annotation.

        Args:
            ann (dict): COCO annotation (already checked).
            img (dict): Its COCO image record.

        Returns:
            dict: The data item.
        """
        img_w, img_h = img['width'], img['height']
        x, y, w, h = ann['bbox']
        # Clip as mmpose does (to the last pixel, not the image border).
        bbox = np.array(
            [
                np.clip(x, 0, img_w - 1),
                np.clip(y, 0, img_h - 1),
                np.clip(x + w, 0, img_w - 1),
                np.clip(y + h, 0, img_h - 1),
            ],
            dtype=np.float32,
        ).reshape(1, 4)
        kpts = np.array(ann['keypoints'], dtype=np.float32).reshape(1, -1, 3)
        keypoints_visible = np.minimum(1, kpts[..., 2])
        num_keypoints = ann.get(
            'num_keypoints', int(np.count_nonzero(kpts[..., 2] > 0))
        )
        return {
            'img_id': ann['image_id'],
            'img_path': osp.join(self.data_prefix['img'], img['file_name']),
            'id': ann['id'],
            'category_id': ann.get('category_id', 1),
            'bbox': bbox,
            'bbox_score': np.ones(1, dtype=np.float32),
            'keypoints': kpts[..., :2].copy(),
            'keypoints_visible': keypoints_visible,
            'num_keypoints': int(num_keypoints),
            'area': float(ann.get('area', w * h)),
            'iscrowd': int(ann.get('iscrowd', 0)),
            'recorded_shape': (img_h, img_w),
        }

    @staticmethod
    def _is_valid_instance(item: dict) -> bool:
        """Whether a ground-truth item is usable (as mmpose decides)."""
        if item['iscrowd'] or item['num_keypoints'] == 0:
            return False
        x1, y1, x2, y2 = item['bbox'][0]
        return bool(x2 - x1 > 0 and y2 - y1 > 0)

    def _load_detection_results(
        self, images: dict[int, tuple[dict, list[dict]]]
    ) -> list[dict]:
        """Turn the person detections of ``bbox_file`` into items.

        Args:
            images (dict): image id -> (image record, annotations).

        Returns:
            list[dict]: One item per person detection (category 1).
        """
        name = type(self).__name__
        path = self.bbox_file
        dets = load_json(path, 'detection results file (bbox_file)', name)
        if not isinstance(dets, list):
            raise ValueError(
                f'{name}: {path} must hold a list of detections in COCO '
                'results format'
            )
        num_keypoints = self.metainfo['num_keypoints']
        data_list = []
        for i, det in enumerate(dets):
            where = f'{name}: {path}: detection {i}'
            if not isinstance(det, dict):
                raise ValueError(f'{where} is not a dict')
            for field in ('image_id', 'bbox', 'score'):
                if field not in det:
                    raise ValueError(f'{where} has no "{field}" field')
            if det.get('category_id', 1) != 1:
                continue  # not a person
            if det['image_id'] not in images:
                raise ValueError(
                    f'{where}: field "image_id" ({det["image_id"]!r}) names '
                    f'no image of {self.ann_file}'
                )
            if len(det['bbox']) < 4:
                raise ValueError(f'{where}: field "bbox" must be [x, y, w, h]')
            img = images[det['image_id']][0]
            x, y, w, h = (float(v) for v in det['bbox'][:4])
            data_list.append(
                {
                    'img_id': det['image_id'],
                    'img_path': osp.join(
                        self.data_prefix['img'], img['file_name']
                    ),
                    'id': len(data_list),
                    'category_id': 1,
                    'bbox': np.array([[x, y, x + w, y + h]], dtype=np.float32),
                    'bbox_score': np.array([det['score']], dtype=np.float32),
                    'keypoints': np.zeros(
                        (1, num_keypoints, 2), dtype=np.float32
                    ),
                    'keypoints_visible': np.zeros(
                        (1, num_keypoints), dtype=np.float32
                    ),
                    'num_keypoints': 0,
                    'area': w * h,
                    'iscrowd': 0,
                    'recorded_shape': (img['height'], img['width']),
                }
            )
        return data_list

    def filter_data(self) -> list[dict]:
        """Apply ``filter_cfg``; refuse an empty set of detections.

        Returns:
            list[dict]: The kept items.
        """
        data_list = super().filter_data()
        if self.bbox_file and not data_list:
            thr = (self.filter_cfg or {}).get('bbox_score_thr')
            cond = f' with score >= {thr}' if thr is not None else ''
            raise ValueError(
                f'{type(self).__name__}: no person detections{cond} in '
                f'{self.bbox_file}'
            )
        return data_list
