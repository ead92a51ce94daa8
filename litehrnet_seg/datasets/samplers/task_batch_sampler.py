"""Batch samplers whose every batch comes from one task's dataset."""

import itertools
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ..multitask_dataset import MultiTaskDataset


def _task_dataset(sampler: Sampler) -> MultiTaskDataset:
    dataset = getattr(sampler, 'dataset', None)
    if not isinstance(dataset, MultiTaskDataset):
        raise TypeError(
            'task batch samplers need a MultiTaskDataset (reached through '
            f'the sampler), got {type(dataset).__name__}'
        )
    return dataset


def _batch_sizes(
    dataset: MultiTaskDataset, default: int, sizes: Mapping | None
) -> dict[str, int]:
    sizes = dict(sizes or {})
    unknown = set(sizes) - set(dataset.tasks)
    if unknown:
        raise ValueError(f'batch_sizes for unknown tasks {sorted(unknown)}')
    out = {t: int(sizes.get(t, default)) for t in dataset.tasks}
    if any(b < 1 for b in out.values()):
        raise ValueError(f'batch sizes must be >= 1, got {out}')
    return out


@DATA_SAMPLERS.register_module()
class TaskBatchSampler(Sampler):
    """Training batches from one task each, in a fixed task ratio.

    Steps are assigned to tasks by smooth weighted round robin, so
    ``ratio=dict(seg=1, pose=1)`` alternates seg, pose, seg, ... and
    ``dict(seg=2, pose=1)`` gives seg, pose, seg, seg, pose, seg, ... on
    every rank alike (all ranks run the same task in a step, as DDP needs).
    Within a task, indices come from a seeded permutation, reshuffled each
    pass; with several ranks each takes its share of a global batch of
    ``batch_size * world_size``. Endless (for ``IterBasedTrainLoop``, like
    ``InfiniteSampler``); ``len()`` is the number of steps until every task
    has seen all its samples at least once.

    Built by mmengine's ``Runner.build_dataloader`` from
    ``train_dataloader.batch_sampler`` with the dataloader's ``sampler``
    (any sampler over the ``MultiTaskDataset``; only its dataset and seed
    are used) and ``batch_size`` (default for tasks not in
    ``batch_sizes``).

    Args:
        sampler (Sampler): Sampler over a ``MultiTaskDataset``.
        batch_size (int): Default per-task batch size. Defaults to 1.
        batch_sizes (dict, optional): Task -> batch size (per rank).
        ratio (dict, optional): Task -> relative number of steps
            (non-negative; 0 disables a task). Defaults to 1 each.
        shuffle (bool): Shuffle within tasks. Defaults to True.
        seed (int, optional): Random seed; defaults to the sampler's.
    """

    def __init__(
        self,
        sampler: Sampler,
        batch_size: int = 1,
        batch_sizes: Mapping[str, int] | None = None,
        ratio: Mapping[str, float] | None = None,
        shuffle: bool = True,
        seed: int | None = None,
    ) -> None:
        self.sampler = sampler
        self.dataset = _task_dataset(sampler)
        self.batch_sizes = _batch_sizes(self.dataset, batch_size, batch_sizes)
        ratio = dict(ratio or {})
        unknown = set(ratio) - set(self.dataset.tasks)
        if unknown:
            raise ValueError(f'ratio for unknown tasks {sorted(unknown)}')
        self.ratio = {t: float(ratio.get(t, 1)) for t in self.dataset.tasks}
        if any(r < 0 for r in self.ratio.values()) or not any(
            self.ratio.values()
        ):
            raise ValueError(
                f'ratio must be >= 0, one at least > 0: {self.ratio}'
            )
        self.shuffle = shuffle
        if seed is None:
            seed = getattr(sampler, 'seed', 0) or 0
        self.seed = int(seed)
        self.rank, self.world_size = get_dist_info()
        self._len = self._epoch_length()

    def _epoch_length(self) -> int:
        total = sum(self.ratio.values())
        steps = 1
        for task, r in self.ratio.items():
            if r == 0:
                continue
            global_bs = self.batch_sizes[task] * self.world_size
            n = -(-len(self.dataset.datasets[task]) // global_bs)
            steps = max(steps, int(np.ceil(n * total / r - 1e-9)))
        return steps

    def _tasks(self) -> Iterator[str]:
        """Endless task order: smooth weighted round robin."""
        total = sum(self.ratio.values())
        active = [t for t in self.ratio if self.ratio[t] > 0]
        current = dict.fromkeys(self.ratio, 0.0)
        while True:
            for task, r in self.ratio.items():
                current[task] += r
            task = max(active, key=lambda t: current[t])
            current[task] -= total
            yield task

    def task_schedule(self, steps: int) -> list[str]:
        """The task of each of the first ``steps`` steps (deterministic)."""
        return list(itertools.islice(self._tasks(), steps))

    def _stream(self, task: str) -> Iterator[int]:
        """Endless task-local indices, reshuffled every pass."""
        n = len(self.dataset.datasets[task])
        g = torch.Generator()
        g.manual_seed(self.seed + self.dataset.tasks.index(task))
        while True:
            if self.shuffle:
                yield from torch.randperm(n, generator=g).tolist()
            else:
                yield from range(n)

    def __iter__(self) -> Iterator[list[int]]:
        # Endless, like mmengine's InfiniteSampler: re-creating the
        # dataloader iterator at each "epoch" costs a 2 s sleep in
        # IterBasedTrainLoop, and the epochs here are a couple of steps.
        streams = {t: self._stream(t) for t in self.dataset.tasks}
        for task in self._tasks():
            bs = self.batch_sizes[task]
            stream = streams[task]
            global_batch = [next(stream) for _ in range(bs * self.world_size)]
            offset = self.dataset.offsets[task]
            yield [
                offset + i for i in global_batch[self.rank :: self.world_size]
            ]

    def __len__(self) -> int:
        """Steps until every task has seen all its samples once."""
        return self._len

    def set_epoch(self, epoch: int) -> None:
        """Unused (endless sampler), for ``DistSamplerSeedHook``."""


@DATA_SAMPLERS.register_module()
class TaskSequentialBatchSampler(Sampler):
    """Validation/test batches: every task's samples once, task by task.

    Each batch holds one task; with several ranks each takes every
    ``world_size``-th sample of a task (no padding, like ``DefaultSampler``
    with ``round_up=False``).

    Args:
        sampler (Sampler): Sampler over a ``MultiTaskDataset``.
        batch_size (int): Default per-task batch size. Defaults to 1.
        batch_sizes (dict, optional): Task -> batch size.
    """

    def __init__(
        self,
        sampler: Sampler,
        batch_size: int = 1,
        batch_sizes: Mapping[str, int] | None = None,
    ) -> None:
        self.sampler = sampler
        self.dataset = _task_dataset(sampler)
        self.batch_sizes = _batch_sizes(self.dataset, batch_size, batch_sizes)
        self.rank, self.world_size = get_dist_info()

    def _indices(self, task: str) -> list[int]:
        return list(self.dataset.task_range(task))[
            self.rank :: self.world_size
        ]

    def __iter__(self) -> Iterator[list[int]]:
        for task in self.dataset.tasks:
            idx = self._indices(task)
            bs = self.batch_sizes[task]
            for start in range(0, len(idx), bs):
                yield idx[start : start + bs]

    def __len__(self) -> int:
        return sum(
            -(-len(self._indices(t)) // self.batch_sizes[t])
            for t in self.dataset.tasks
        )
