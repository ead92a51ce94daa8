from .check_seg_sample import CheckSegSample
from .generate_heatmap_target import GenerateHeatmapTarget
from .get_bbox_center_scale import GetBBoxCenterScale
from .load_annotations_checked import LoadAnnotationsChecked
from .load_image_checked import LoadImageFromFileChecked
from .pack_pose_inputs import PackPoseInputs
from .random_bbox_transform import RandomBBoxTransform
from .random_half_body import RandomHalfBody
from .topdown_affine import TopdownAffine
from .topdown_random_flip import TopdownRandomFlip

__all__ = [
    'CheckSegSample',
    'GenerateHeatmapTarget',
    'GetBBoxCenterScale',
    'LoadAnnotationsChecked',
    'LoadImageFromFileChecked',
    'PackPoseInputs',
    'RandomBBoxTransform',
    'RandomHalfBody',
    'TopdownAffine',
    'TopdownRandomFlip',
]
