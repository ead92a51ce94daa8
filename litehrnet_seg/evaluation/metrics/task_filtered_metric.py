"""A metric restricted to one task's samples of a multi-task run."""

from collections.abc import Mapping, Sequence

from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS

from ...structures.task import TASKS


@METRICS.register_module()
class TaskFilteredMetric(BaseMetric):
    """Run a metric on one task's samples of a multi-task evaluation.

    Samples are routed by the ``task`` metainfo the multi-task model writes
    (``'seg'``/``'pose'``); the dataset metainfo of a ``MultiTaskDataset``
    (task -> metainfo) is narrowed to the task's. Metric names are the
    wrapped metric's (``mIoU``, ``coco/AP``).

    Args:
        metric (dict): Wrapped metric config, e.g. ``dict(type='IoUMetric',
            iou_metrics=['mIoU'])``.
        task (str): ``'seg'`` or ``'pose'``.
    """

    def __init__(self, metric: dict, task: str) -> None:
        if task not in TASKS:
            raise ValueError(f'task must be one of {TASKS}, got {task!r}')
        self.task = task
        self.metric = METRICS.build(metric)
        super().__init__(
            collect_device=self.metric.collect_device,
            prefix=self.metric.prefix,
        )

    @property
    def dataset_meta(self) -> dict | None:
        return self.metric.dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict | None) -> None:
        if dataset_meta is None:
            return
        if isinstance(dataset_meta.get(self.task), Mapping):
            dataset_meta = dataset_meta[self.task]
        self.metric.dataset_meta = dataset_meta

    def _is_mine(self, sample: Mapping) -> bool:
        task = sample.get('task')
        if task is not None:
            return task == self.task
        key = 'pred_sem_seg' if self.task == 'seg' else 'pred_instances'
        return key in sample

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        mine = [s for s in data_samples if self._is_mine(s)]
        if mine:
            self.metric.process(data_batch, mine)

    def compute_metrics(self, results: list) -> dict:
        return self.metric.compute_metrics(results)

    def evaluate(self, size: int) -> dict:
        # The wrapped metric holds the results; `size` (the whole
        # multi-task dataset) only bounds them.
        return self.metric.evaluate(size)
