from .cityscapes import CheckedCityscapesDataset
from .transforms import (
    CheckSegSample,
    LoadAnnotationsChecked,
    LoadImageFromFileChecked,
)

__all__ = [
    'CheckSegSample',
    'CheckedCityscapesDataset',
    'LoadAnnotationsChecked',
    'LoadImageFromFileChecked',
]
