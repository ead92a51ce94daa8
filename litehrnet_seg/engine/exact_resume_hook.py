"""Make ``--resume`` continue exactly where the checkpoint was taken.

mmengine restores the model, optimizer, parameter schedulers, message hub
and iteration counter, and an ``IterBasedTrainLoop`` fast-forwards the
dataloader past the batches already trained on. What it does not restore
is the global random state (Python ``random``, NumPy, torch CPU/CUDA): it
re-seeds from ``randomness.seed`` instead, so dropout masks and random
augmentations in the main process (``num_workers=0``) after a resume
differ from those of an uninterrupted run. And an ``EpochBasedTrainLoop``
can only resume at an epoch boundary: a checkpoint taken mid-epoch (by
:class:`PreemptionCheckpointHook`) would replay the whole epoch.

:class:`ExactResumeHook` stores the random state in every checkpoint and
puts it back at the right moment when resuming: after the dataloader has
been fast-forwarded (the skipped batches consume random numbers too), just
before the first new batch is produced. For epoch-based loops it also
skips the batches of a partly trained epoch.
"""

import logging
import random
from collections.abc import Callable, Iterator

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmseg.registry import HOOKS

__all__ = ['ExactResumeHook', 'get_rng_state', 'set_rng_state']

STATE_KEY = 'resume_state'


def get_rng_state() -> dict:
    """Snapshot of Python, NumPy and torch (CPU and CUDA) random states.

    Only plain types and tensors, so the checkpoint still loads with
    ``torch.load(weights_only=True)``.

    Returns:
        dict: State for :func:`set_rng_state`.
    """
    name, key, pos, has_gauss, gauss = np.random.get_state()
    state = dict(
        python=random.getstate(),
        numpy=dict(
            name=name,
            key=torch.from_numpy(key.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            gauss=float(gauss),
        ),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, logger: logging.Logger | None = None) -> None:
    """Restore a snapshot taken by :func:`get_rng_state`.

    Args:
        state (dict): The snapshot.
        logger (logging.Logger, optional): Where to warn if the CUDA state
            cannot be restored (different number of GPUs). Defaults to None.
    """
    random.setstate(state['python'])
    np_state = state['numpy']
    np.random.set_state(
        (
            np_state['name'],
            np_state['key'].numpy().astype(np.uint32),
            np_state['pos'],
            np_state['has_gauss'],
            np_state['gauss'],
        )
    )
    torch.set_rng_state(state['torch'])
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        elif logger is not None:
            logger.warning(
                f'The checkpoint holds the CUDA random state of {len(cuda)} '
                f'GPU(s) but {torch.cuda.device_count()} are visible; CUDA '
                'random numbers will differ from the interrupted run.'
            )


class _RestoreAfter:
    """Iterator proxy: after ``count`` items, call ``restore`` once, then
    put the wrapped iterator back with ``put_back``.

    Used for ``IterBasedTrainLoop.dataloader_iterator``, which the loop
    advances ``iter`` times when resuming before drawing the next batch.
    """

    def __init__(
        self,
        iterator: Iterator,
        count: int,
        restore: Callable[[], None],
        put_back: Callable[[Iterator], None],
    ) -> None:
        self._iterator = iterator
        self._remaining = count
        self._restore = restore
        self._put_back = put_back

    def __iter__(self):
        return self

    def __next__(self):
        if self._remaining == 0:
            self._restore()
            self._put_back(self._iterator)
            return next(self._iterator)
        self._remaining -= 1
        return next(self._iterator)

    def __getattr__(self, name: str):
        return getattr(self._iterator, name)


class _SkipFirstBatches:
    """Dataloader proxy for the first epoch after a mid-epoch resume:
    iterating it drops the first ``skip`` batches (already trained on),
    calls ``restore``, then yields the rest. ``len`` and attributes are
    those of the wrapped dataloader.
    """

    def __init__(
        self, dataloader, skip: int, restore: Callable[[], None]
    ) -> None:
        self.dataloader = dataloader
        self.skip = skip
        self._restore = restore

    def __iter__(self):
        iterator = iter(self.dataloader)
        for done in range(self.skip):
            try:
                next(iterator)
            except StopIteration:
                raise RuntimeError(
                    f'Resuming mid-epoch after {self.skip} batches, but '
                    f'this epoch has only {done}: the dataset or batch size '
                    'differs from the interrupted run.'
                ) from None
        self._restore()
        yield from iterator

    def __len__(self) -> int:
        return len(self.dataloader)

    def __getattr__(self, name: str):
        return getattr(self.dataloader, name)


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Restore random state (and the position in an epoch) on resume.

    Every checkpoint gets a ``resume_state`` entry: the Python, NumPy and
    torch random states at save time and, for epoch-based training, how
    many batches of the current epoch were done (non-zero only for the
    mid-epoch checkpoints written by :class:`PreemptionCheckpointHook`).
    When training resumes from such a checkpoint:

    * ``IterBasedTrainLoop``: the random state is restored after the loop
      has fast-forwarded its dataloader, right before the next batch.
    * ``EpochBasedTrainLoop``: the batches of the interrupted epoch already
      trained on are skipped (the sampler order of an epoch is fixed by the
      seed and epoch), then the random state is restored. Hooks see batch
      indices counted from the first new batch in that epoch.

    With deterministic settings (``randomness=dict(seed=...,
    deterministic=True)``) the resumed run then reproduces the losses of an
    uninterrupted run. Loading weights with ``load_from`` (no resume) is
    unaffected. In multi-process runs each rank gets rank 0's random state
    back, which is exact when all ranks share the seed (mmengine's default,
    ``diff_rank_seed=False``); with ``diff_rank_seed=True`` ranks keep the
    re-seeded state mmengine gives them.

    Args:
        restore_rng (bool): Restore the random state. Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, restore_rng: bool = True) -> None:
        self.restore_rng = restore_rng
        self._in_epoch = False
        self._batches_done = 0  # batches finished in the current epoch
        self._loaded: dict | None = None  # resume_state + meta['iter']
        self.skipping: _SkipFirstBatches | None = None

    # -- saving ------------------------------------------------------------
    def before_train_iter(
        self, runner, batch_idx: int, data_batch=None
    ) -> None:
        """Count batches of the current epoch (for mid-epoch checkpoints).

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch in the epoch (global
                iteration for iteration-based loops).
            data_batch: Unused.
        """
        skipped = self.skipping.skip if self.skipping is not None else 0
        self._batches_done = skipped + batch_idx + 1

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add ``resume_state`` (random state, batches done in the epoch).

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint about to be written.
        """
        mid_epoch = self._in_epoch and isinstance(
            runner.train_loop, EpochBasedTrainLoop
        )
        checkpoint[STATE_KEY] = dict(
            rng=get_rng_state(),
            epoch_batches_done=self._batches_done if mid_epoch else 0,
        )

    # -- resuming ------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the loaded state until training starts.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        state = checkpoint.get(STATE_KEY)
        meta = checkpoint.get('meta', {})
        self._loaded = None
        if state is not None and 'iter' in meta:
            self._loaded = dict(state, iter=meta['iter'])

    def _restorer(self, runner, rng: dict) -> Callable[[], None]:
        """The function that puts ``rng`` back (or does nothing)."""

        def restore() -> None:
            if not self.restore_rng:
                return
            randomness = getattr(runner, '_randomness_cfg', None) or {}
            if get_world_size() > 1 and randomness.get('diff_rank_seed'):
                return
            set_rng_state(rng, runner.logger)

        return restore

    def before_train_epoch(self, runner) -> None:
        """Arrange the restore for the first epoch after a resume.

        Args:
            runner (Runner): The runner.
        """
        self._in_epoch = True
        self._batches_done = 0
        loaded, self._loaded = self._loaded, None
        if loaded is None or loaded['iter'] != runner.iter:
            return  # not resuming (e.g. load_from only)
        restore = self._restorer(runner, loaded['rng'])
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):

            def put_back(iterator: Iterator) -> None:
                loop.dataloader_iterator = iterator

            loop.dataloader_iterator = _RestoreAfter(
                loop.dataloader_iterator, runner.iter, restore, put_back
            )
        elif isinstance(loop, EpochBasedTrainLoop):
            skip = loaded['epoch_batches_done']
            if skip:
                runner.logger.info(
                    f'Resuming inside epoch {runner.epoch + 1}: skipping its '
                    f'first {skip} batches, already trained on.'
                )
            self.skipping = _SkipFirstBatches(loop.dataloader, skip, restore)
            loop.dataloader = self.skipping
        else:
            runner.logger.warning(
                f'{type(self).__name__}: unknown train loop '
                f'{type(loop).__name__}; restoring the random state now, the '
                'position in the data is left to the loop.'
            )
            restore()

    def after_train_epoch(self, runner) -> None:
        """Put the real dataloader back after the resumed epoch.

        Args:
            runner (Runner): The runner.
        """
        self._in_epoch = False
        if self.skipping is not None:
            runner.train_loop.dataloader = self.skipping.dataloader
            self.skipping = None
