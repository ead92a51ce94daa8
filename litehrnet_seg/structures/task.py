"""Which task (segmentation or pose) a batch of data samples carries."""

from collections.abc import Sequence

from mmseg.structures import SegDataSample

from .pose_data_sample import PoseDataSample

TASKS = ('seg', 'pose')
_SAMPLE_TYPES = dict(seg=SegDataSample, pose=PoseDataSample)


def infer_task(data_samples: Sequence | None) -> str:
    """The task of a batch from its data samples' type.

    Args:
        data_samples (Sequence): ``SegDataSample`` (-> ``'seg'``) or
            ``PoseDataSample`` (-> ``'pose'``) objects, all of one type.

    Returns:
        str: ``'seg'`` or ``'pose'``.
    """
    if not data_samples:
        raise ValueError('cannot infer the task of a batch without samples')
    tasks = set()
    for sample in data_samples:
        for task, cls in _SAMPLE_TYPES.items():
            if isinstance(sample, cls):
                tasks.add(task)
                break
        else:
            raise TypeError(
                f'cannot infer the task from a {type(sample).__name__}; '
                'expected SegDataSample or PoseDataSample'
            )
    if len(tasks) != 1:
        raise ValueError(
            f'a batch must carry one task, got samples of {sorted(tasks)} '
            '(use TaskBatchSampler / TaskSequentialBatchSampler)'
        )
    return tasks.pop()
