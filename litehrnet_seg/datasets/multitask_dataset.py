"""One dataset per task behind one index space (multi-task training)."""

from collections.abc import Mapping

from mmengine.dataset import BaseDataset
from mmseg.registry import DATASETS
from torch.utils.data import Dataset

from ..structures.task import TASKS


@DATASETS.register_module()
class MultiTaskDataset(Dataset):
    """One dataset per task behind one index space.

    Indices ``[offsets[t], offsets[t] + len(datasets[t]))`` belong to task
    ``t`` (in the order given). Use with ``TaskBatchSampler`` /
    ``TaskSequentialBatchSampler`` so that a batch holds one task.

    Args:
        datasets (dict): Task (``'seg'``, ``'pose'``) -> dataset config or
            dataset.
    """

    def __init__(self, datasets: Mapping[str, dict | Dataset]) -> None:
        unknown = set(datasets) - set(TASKS)
        if unknown or not datasets:
            raise ValueError(
                f'datasets must be keyed by tasks {TASKS}, got '
                f'{sorted(datasets)}'
            )
        self.datasets: dict[str, Dataset] = {}
        for task, cfg in datasets.items():
            ds = DATASETS.build(cfg) if isinstance(cfg, Mapping) else cfg
            if isinstance(ds, BaseDataset):
                ds.full_init()
            if len(ds) == 0:
                raise ValueError(f'the {task!r} dataset is empty')
            self.datasets[task] = ds
        self.tasks = tuple(self.datasets)
        self.offsets: dict[str, int] = {}
        start = 0
        for task in self.tasks:
            self.offsets[task] = start
            start += len(self.datasets[task])
        self._len = start

    @property
    def metainfo(self) -> dict:
        """Task -> that dataset's metainfo (``TaskFilteredMetric`` picks
        its own)."""
        return {
            task: dict(getattr(ds, 'metainfo', {}))
            for task, ds in self.datasets.items()
        }

    def task_range(self, task: str) -> range:
        start = self.offsets[task]
        return range(start, start + len(self.datasets[task]))

    def locate(self, idx: int) -> tuple[str, int]:
        """Global index -> (task, index in that task's dataset)."""
        if idx < 0:
            idx += self._len
        for task in reversed(self.tasks):
            if idx >= self.offsets[task]:
                local = idx - self.offsets[task]
                if local >= len(self.datasets[task]):
                    break
                return task, local
        raise IndexError(f'index {idx} out of range ({self._len})')

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, idx: int):
        task, local = self.locate(idx)
        return self.datasets[task][local]
