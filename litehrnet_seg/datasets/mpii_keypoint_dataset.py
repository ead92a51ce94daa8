"""MPII Human Pose for top-down pose estimation (mmpose 1.x names)."""

import os.path as osp

import numpy as np
from mmseg.registry import DATASETS

from .base_pose_dataset import (
    BaseTopdownPoseDataset,
    check_ann_file,
    load_json,
)
from .integrity import DataError, check_mpii_entry

# fmt: off
_MPII_JOINT_WEIGHTS = [
    1.5, 1.2, 1.0, 1.0, 1.2, 1.5, 1.0, 1.0,
    1.0, 1.0, 1.5, 1.2, 1.0, 1.0, 1.2, 1.5,
]
_MPII_SIGMAS = [
    0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026,
    0.026, 0.026, 0.062, 0.072, 0.179, 0.179, 0.072, 0.062,
]
_MPII_SKELETON_LINKS = [
    [0, 1], [1, 2], [2, 6], [6, 3], [3, 4], [4, 5], [6, 7], [7, 8],
    [8, 9], [8, 12], [12, 11], [11, 10], [8, 13], [13, 14], [14, 15],
]
# fmt: on

MPII_METAINFO = dict(
    dataset_name='mpii',
    classes=('person',),
    keypoint_names=[
        'right_ankle',
        'right_knee',
        'right_hip',
        'left_hip',
        'left_knee',
        'left_ankle',
        'pelvis',
        'thorax',
        'upper_neck',
        'head_top',
        'right_wrist',
        'right_elbow',
        'right_shoulder',
        'left_shoulder',
        'left_elbow',
        'left_wrist',
    ],
    flip_indices=[5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10],
    upper_body_ids=[7, 8, 9, 10, 11, 12, 13, 14, 15],
    lower_body_ids=[0, 1, 2, 3, 4, 5, 6],
    joint_weights=_MPII_JOINT_WEIGHTS,
    # Adapted from COCO by mmpose (MPII has no OKS protocol of its own).
    sigmas=_MPII_SIGMAS,
    skeleton_links=_MPII_SKELETON_LINKS,
)

# MPII boxes are given as a scale relative to 200 px.
PIXEL_STD = 200.0
# Head size = 0.6 * head-box diagonal (official MPII PCKh protocol).
SC_BIAS = 0.6


@DATASETS.register_module()
class MpiiDataset(BaseTopdownPoseDataset):
    """MPII Human Pose, top-down: one data item per annotated person.

    Reads the json used by mmpose / HRNet (a list of ``{image, center,
    scale, joints (K x 2), joints_vis (K)}``). As in mmpose, the box is
    ``scale * 200`` px square and its centre is moved down by
    ``15 / 200 * scale`` px (to keep the feet in the crop), then shifted
    from MPII's 1-based (Matlab) to 0-based pixel coordinates. The joints
    are shifted to 0-based coordinates too (as mmpose 0.x and the HRNet
    reference do), so that predictions, ground truth and image share one
    frame; :class:`~litehrnet_seg.evaluation.MpiiPCKAccuracy` therefore
    compares them directly, which equals the official protocol (1-based
    predictions against 1-based ground truth).

    Each item holds ``img_path``, ``img_id`` (the numeric file stem),
    ``id`` (running index), ``category_id`` (1), ``bbox_center`` (1, 2),
    ``bbox_scale`` (1, 2), ``bbox`` (1, 4) xyxy, ``bbox_score`` (1,),
    ``keypoints`` (1, K, 2), ``keypoints_visible`` (1, K),
    ``num_keypoints``, ``head_size`` (float, with ``headbox_file``) and the
    metainfo fields listed in :class:`BaseTopdownPoseDataset`.

    Args:
        ann_file (str): MPII json, e.g. ``annotations/mpii_val.json``.
        headbox_file (str, optional): ``mpii_gt_val.mat`` (official ground
            truth with ``headboxes_src``, shape (2, 2, N), in the order of
            ``ann_file``). Sets each item's ``head_size`` for PCKh. Used as
            given (not joined with ``data_root``), as in mmpose.
        **kwargs: See :class:`BaseTopdownPoseDataset` (``data_mode``,
            ``metainfo``, ``bad_sample_policy``) and mmengine's
            ``BaseDataset``.
    """

    METAINFO: dict = MPII_METAINFO

    def __init__(
        self, ann_file: str = '', headbox_file: str | None = None, **kwargs
    ) -> None:
        self.headbox_file = headbox_file
        super().__init__(ann_file=ann_file, **kwargs)

    def _load_head_sizes(self, num_anns: int) -> np.ndarray:
        """Read ``headbox_file`` and return one head size per annotation."""
        from scipy.io import loadmat

        name = type(self).__name__
        path = self.headbox_file
        check_ann_file(path, 'head-box file (headbox_file)', name)
        try:
            mat = loadmat(path)
        except Exception as e:  # scipy raises several types
            raise ValueError(
                f'{name}: cannot read {path} as a .mat file: {e}'
            ) from e
        if 'headboxes_src' not in mat:
            raise ValueError(f'{name}: {path} has no "headboxes_src" field')
        boxes = np.asarray(mat['headboxes_src'], dtype=np.float64)
        if boxes.ndim != 3 or boxes.shape[:2] != (2, 2):
            raise ValueError(
                f'{name}: {path}: field "headboxes_src" should have shape '
                f'(2, 2, N), got {boxes.shape}'
            )
        if boxes.shape[2] != num_anns:
            raise ValueError(
                f'{name}: {path} has {boxes.shape[2]} head boxes but '
                f'{self.ann_file} has {num_anns} annotations'
            )
        # (2 corners, xy, N): size = 0.6 * diagonal, as the official code.
        return SC_BIAS * np.linalg.norm(boxes[1] - boxes[0], axis=0)

    def load_data_list(self) -> list[dict]:
        """Load and check the MPII json.

        Returns:
            list[dict]: One item per annotated person.
        """
        name = type(self).__name__
        path = self.ann_file
        anns = load_json(path, 'MPII annotation file', name)
        if not isinstance(anns, list):
            raise DataError(
                f'{name}: {path} must hold a list of {{image, center, '
                'scale, joints, joints_vis}} entries',
                path,
                'unreadable_annotation',
            )
        head_sizes = (
            self._load_head_sizes(len(anns)) if self.headbox_file else None
        )
        num_keypoints = self.metainfo['num_keypoints']
        data_list, errors = [], []
        for idx, ann in enumerate(anns):
            try:
                check_mpii_entry(ann, idx, path, num_keypoints)
            except DataError as err:
                errors.append(err)
                continue
            item = self.parse_data_info(ann, idx)
            if head_sizes is not None:
                item['head_size'] = float(head_sizes[idx])
            data_list.append(item)
        self.reject_samples(errors, len(anns))
        return data_list

    def parse_data_info(self, ann: dict, idx: int) -> dict:
        """Build the item of one MPII entry.

        Args:
            ann (dict): The entry (already checked).
            idx (int): Its index in the file.

        Returns:
            dict: The data item.
        """
        center = np.array(ann['center'], dtype=np.float32)
        scale = np.float32(ann['scale']) * PIXEL_STD
        if center[0] != -1:
            # Move the box down a little to avoid cutting the legs (mmpose).
            center[1] += 15.0 / PIXEL_STD * scale
        center -= 1  # 1-based (Matlab) -> 0-based
        center = center.reshape(1, 2)
        scale_wh = np.array([[scale, scale]], dtype=np.float32)
        bbox = np.concatenate(
            [center - scale_wh / 2, center + scale_wh / 2], 1
        )
        keypoints = np.array(ann['joints'], dtype=np.float32).reshape(1, -1, 2)
        keypoints -= 1  # 1-based -> 0-based
        visible = np.array(ann['joints_vis'], dtype=np.float32).reshape(1, -1)
        visible = np.minimum(1, visible)
        stem = osp.splitext(osp.basename(ann['image']))[0]
        return {
            'img_id': int(stem) if stem.isdigit() else idx,
            'img_path': osp.join(self.data_prefix['img'], ann['image']),
            'id': idx,
            'category_id': 1,
            'bbox_center': center,
            'bbox_scale': scale_wh,
            'bbox': bbox.astype(np.float32),
            'bbox_score': np.ones(1, dtype=np.float32),
            'keypoints': keypoints,
            'keypoints_visible': visible,
            'num_keypoints': int(np.count_nonzero(visible)),
        }
