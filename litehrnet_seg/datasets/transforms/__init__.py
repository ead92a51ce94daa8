from .check_seg_sample import (
    CheckSegSample,
    LoadAnnotationsChecked,
    LoadImageFromFileChecked,
)

__all__ = [
    'CheckSegSample',
    'LoadAnnotationsChecked',
    'LoadImageFromFileChecked',
]
