"""Hook that logs how many bad samples the training datasets skipped."""

from __future__ import annotations

import logging

import torch
from mmengine.dist import all_reduce, is_distributed
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ..datasets.integrity import BadSamplePolicyMixin, iter_datasets

__all__ = ['BadSampleReportHook']


@HOOKS.register_module()
class BadSampleReportHook(Hook):
    """Log the number of bad samples skipped by the training datasets.

    For every training dataset with ``bad_sample_policy='skip'`` it logs
    the running count after each training epoch (and each validation, for
    iteration-based schedules) when it grew, and the total at the end of
    the run. Each skipped sample is also logged, with its file, when it is
    skipped.

    Counts include dataloader worker processes (the counter is shared, see
    :class:`~.bad_sample_policy.SkipCounter`) and are
    summed over the ranks of a distributed run.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._reported: dict[int, int] = {}
        self._datasets: list[BadSamplePolicyMixin] = []

    def before_train(self, runner) -> None:
        """Find the training datasets that skip bad samples."""
        # Only here: in tools/test.py there is no training dataloader, and
        # asking the runner for it would build one.
        self._datasets = [
            ds
            for ds in iter_datasets(runner.train_dataloader.dataset)
            if isinstance(ds, BadSamplePolicyMixin) and ds.skips_bad_samples
        ]

    @staticmethod
    def _total(dataset: BadSamplePolicyMixin) -> int:
        count = dataset.num_skipped
        if is_distributed():
            tensor = torch.tensor(count, dtype=torch.int64)
            all_reduce(tensor)  # sum over ranks
            count = int(tensor.item())
        return count

    def _report(self, runner, when: str, final: bool) -> None:
        for dataset in self._datasets:
            total = self._total(dataset)
            before = self._reported.get(id(dataset), 0)
            self._reported[id(dataset)] = total
            name = type(dataset).__name__
            source = getattr(dataset, 'ann_file', '') or getattr(
                dataset, 'data_root', ''
            )
            where = f' ({source})' if source else ''
            if final:
                print_log(
                    f'{name}{where}: {total} bad samples skipped in this '
                    f"run (bad_sample_policy='skip'); the warnings above "
                    'name their files.',
                    logger='current',
                    level=logging.WARNING if total else logging.INFO,
                )
            elif total > before:
                print_log(
                    f'{name}{where}: {total} bad samples skipped so far '
                    f'({total - before} new, {when}).',
                    logger='current',
                    level=logging.WARNING,
                )

    def after_train_epoch(self, runner) -> None:
        """Log the count when it grew during the epoch."""
        # runner.epoch is still the 0-based index of the finished epoch.
        self._report(runner, f'epoch {runner.epoch + 1}', final=False)

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        """Log the count when it grew (iteration-based schedules)."""
        self._report(runner, f'iteration {runner.iter}', final=False)

    def after_run(self, runner) -> None:
        """Log the total of the run."""
        self._report(runner, 'end of run', final=True)
