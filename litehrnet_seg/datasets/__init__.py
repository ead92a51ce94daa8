from .base_pose_dataset import BaseTopdownPoseDataset, parse_pose_metainfo
from .cityscapes import CheckedCityscapesDataset
from .coco_keypoint_dataset import COCO_METAINFO, CocoDataset
from .integrity import (
    BAD_SAMPLE_POLICIES,
    BadSamplePolicyMixin,
    DataError,
)
from .mpii_keypoint_dataset import MPII_METAINFO, MpiiDataset
from .multitask_dataset import MultiTaskDataset
from .samplers import TaskBatchSampler, TaskSequentialBatchSampler
from .transforms import (
    CheckSegSample,
    LoadAnnotationsChecked,
    LoadImageFromFileChecked,
)

__all__ = [
    'BAD_SAMPLE_POLICIES',
    'BadSamplePolicyMixin',
    'BaseTopdownPoseDataset',
    'COCO_METAINFO',
    'CheckSegSample',
    'CheckedCityscapesDataset',
    'CocoDataset',
    'DataError',
    'LoadAnnotationsChecked',
    'LoadImageFromFileChecked',
    'MPII_METAINFO',
    'MpiiDataset',
    'MultiTaskDataset',
    'TaskBatchSampler',
    'TaskSequentialBatchSampler',
    'parse_pose_metainfo',
]
