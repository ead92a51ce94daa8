"""Data validation: pure checks and the bad-sample policy.

* :mod:`.checks`: :class:`DataError` and the checks that the loading
  transforms, the datasets and ``tools/misc/check_dataset.py`` share.
* :mod:`.bad_sample_policy`: ``bad_sample_policy='raise' | 'skip'`` for
  datasets (only a :class:`DataError` can be skipped).
"""

from .bad_sample_policy import (
    BAD_SAMPLE_POLICIES,
    BadSamplePolicyMixin,
    collect_data_errors,
    iter_datasets,
)
from .checks import (
    DataError,
    check_coco_annotation,
    check_coco_image,
    check_image_shape,
    check_mpii_entry,
    check_seg_label,
    read_image,
)
from .skip_counter import SkipCounter

__all__ = [
    'BAD_SAMPLE_POLICIES',
    'BadSamplePolicyMixin',
    'DataError',
    'SkipCounter',
    'check_coco_annotation',
    'check_coco_image',
    'check_image_shape',
    'check_mpii_entry',
    'check_seg_label',
    'collect_data_errors',
    'iter_datasets',
    'read_image',
]
