"""Training loops that resume exactly and stop cleanly on SIGTERM.

mmengine's ``--resume`` re-seeds the global random generators (dropout
masks and main-process augmentations then differ from an uninterrupted
run), and an ``EpochBasedTrainLoop`` resumes only at an epoch boundary.
:class:`SafeIterBasedTrainLoop` / :class:`SafeEpochBasedTrainLoop`
(``train_cfg.type``; every argument of the loop they extend, plus those of
:class:`SafeLoopMixin`) add:

* every checkpoint stores the random state and, mid-epoch, the batches of
  the epoch already done; a resume skips those batches and restores the
  random state right before the first new batch;
* a signal of ``stop_signals`` (SIGTERM) is acted on after the iteration
  in progress: ``iter_{N}.pth`` is saved, ``last_checkpoint`` points at
  it and the process exits. Dataloader workers ignore those signals
  unless the training process sends them.
"""

import bisect
import contextlib
import functools
import os
import os.path as osp
import signal
from collections.abc import Callable, Sequence

from mmengine.dist import barrier, get_world_size, is_main_process
from mmengine.fileio import join_path
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmseg.registry import LOOPS

from .atomic_backend import atomic_write_bytes
from .rng_state import get_rng_state, set_rng_state
from .stop_signal import StopSignal, filter_signals_in_worker

__all__ = ['SafeEpochBasedTrainLoop', 'SafeIterBasedTrainLoop']

STATE_KEY = 'resume_state'


def diff_rank_seed(runner) -> bool:
    """``randomness.diff_rank_seed`` of the runner's config."""
    return bool((runner.cfg.get('randomness') or {}).get('diff_rank_seed'))


class ResumeStateHook(Hook):
    """Carries a loop's resume state in and out of checkpoints; the loop
    registers it, so no config lists it.

    Args:
        loop (SafeLoopMixin): The loop.
    """

    priority = 'VERY_HIGH'  # before CheckpointHook saves at epoch end

    def __init__(self, loop: 'SafeLoopMixin') -> None:
        self.loop = loop

    def after_train_epoch(self, runner) -> None:
        """An epoch-end checkpoint is not mid-epoch."""
        self.loop.batches_done = 0

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the random state and the batches done in the epoch."""
        checkpoint[STATE_KEY] = dict(
            rng=get_rng_state(), epoch_batches_done=self.loop.batches_done
        )

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the loaded state (and its iteration) for the loop."""
        state = checkpoint.get(STATE_KEY)
        meta = checkpoint.get('meta') or {}
        ok = state is not None and 'iter' in meta
        self.loop.loaded = dict(state, iter=meta['iter']) if ok else None


class SkipFirstBatches:
    """The dataloader of the first epoch after a resume: iterating drops
    the first ``skip`` batches (already trained on) and calls ``restore``
    right before the first new one; other attributes are the wrapped
    dataloader's.
    """

    def __init__(self, dataloader, skip: int, restore: Callable) -> None:
        self.dataloader, self.skip, self.restore = dataloader, skip, restore

    def __iter__(self):
        if not self.skip:
            self.restore()  # before iter(), which draws a base seed
        iterator = iter(self.dataloader)
        for done in range(self.skip):
            if next(iterator, None) is None:
                raise RuntimeError(
                    f'Resuming mid-epoch after {self.skip} batches, but this '
                    f'epoch has only {done}: the dataset or batch size '
                    'differs from the interrupted run.'
                )
        if self.skip:
            self.restore()
        yield from iterator

    def __len__(self) -> int:
        return len(self.dataloader)

    def __getattr__(self, name: str):
        return getattr(self.dataloader, name)


class SafeLoopMixin:
    """What both safe loops add (see the module docstring).

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The train dataloader or its config.
        *args: Positional arguments of the extended loop.
        stop_signals (Sequence[str | int]): Signals that trigger the save
            and exit; ``[]`` disables it. Defaults to ``('SIGTERM',)``.
        exit_code (int): Exit status after that save; e.g. 143 lets a
            wrapper tell a pre-empted run from a finished one. Defaults
            to 0.
        shield_workers (bool): Dataloader workers ignore ``stop_signals``
            unless the training process sends them. Defaults to True.
        restore_rng (bool): Restore the random state on resume (not in
            multi-process runs with ``randomness.diff_rank_seed=True``).
            Defaults to True.
        **kwargs: Keyword arguments of the extended loop.
    """

    def __init__(
        self,
        runner,
        dataloader,
        *args,
        stop_signals: Sequence[str | int] = ('SIGTERM',),
        exit_code: int = 0,
        shield_workers: bool = True,
        restore_rng: bool = True,
        **kwargs,
    ) -> None:
        self.stop = StopSignal(stop_signals)
        self.exit_code = exit_code
        self.restore_rng = restore_rng
        self.batches_done = 0  # of the current epoch, for mid-epoch saves
        self.skipped = 0  # batches skipped at the start of this epoch
        self.loaded: dict | None = None  # resume_state + meta iter
        if isinstance(dataloader, dict):
            # Built here so that the workers get the signal filter before
            # IterBasedTrainLoop starts them.
            dataloader = runner.build_dataloader(
                dataloader,
                seed=runner.seed,
                diff_rank_seed=diff_rank_seed(runner),
            )
        if (
            shield_workers
            and self.stop.signals
            and getattr(dataloader, 'num_workers', 0)
            and hasattr(signal, 'sigwaitinfo')  # not on macOS/Windows
        ):
            dataloader.worker_init_fn = functools.partial(
                filter_signals_in_worker,
                signals=tuple(int(s) for s in self.stop.signals),
                main_pid=os.getpid(),
                init_fn=dataloader.worker_init_fn,
            )
        super().__init__(runner, dataloader, *args, **kwargs)
        runner.register_hook(ResumeStateHook(self))

    @contextlib.contextmanager
    def catching_stop_signals(self):
        """Catch ``stop_signals`` while training runs."""
        if self.stop.signals:
            names = ', '.join(s.name for s in self.stop.signals)
            print_log(
                f'On {names}: save a checkpoint after the current iteration '
                'and exit (resume with --resume).'
                if self.stop.install()
                else f'Not in the main thread: {names} stops training '
                'without a checkpoint.',
                logger='current',
            )
        try:
            yield
        finally:
            self.stop.uninstall()

    def resume_state(self) -> dict | None:
        """The loaded resume state if this run resumes from it (once)."""
        loaded, self.loaded = self.loaded, None
        if loaded is None or self.iter == 0 or loaded['iter'] != self.iter:
            return None  # not resuming (e.g. load_from only)
        return loaded

    def restore(self, loaded: dict | None) -> None:
        """Put the checkpoint's random state back (if resuming)."""
        if loaded is None or not self.restore_rng:
            return
        if get_world_size() > 1 and diff_rank_seed(self.runner):
            return
        set_rng_state(loaded['rng'], self.runner.logger)

    def stop_if_requested(self) -> None:
        """After an iteration: save and exit if a stop signal arrived."""
        if not self.stop.previous or not self.stop.requested():
            return
        path = self.save_stop_checkpoint()
        if get_world_size() > 1:
            barrier()  # every rank exits after the checkpoint is on disk
        name = self.stop.received.name if self.stop.received else 'a signal'
        self.runner.logger.info(
            f'Received {name}: saved checkpoint {path} after iteration '
            f'{self.iter} (epoch {self.epoch + 1}). Exiting with status '
            f'{self.exit_code}; continue with `tools/train.py CONFIG '
            '--resume` (same work_dir).'
        )
        raise SystemExit(self.exit_code)

    def save_stop_checkpoint(self) -> str:
        """Write ``iter_{N}.pth`` (unless this iteration's periodic
        checkpoint is it) and point ``last_checkpoint`` at it."""
        runner = self.runner
        hook = next(
            (h for h in runner.hooks if isinstance(h, CheckpointHook)), None
        )
        out_dir = runner.work_dir if hook is None else hook.out_dir
        backend_args = None if hook is None else hook.backend_args
        filename = f'iter_{self.iter}.pth'
        if hook is not None and not hook.by_epoch:
            filename = hook.filename_tmpl.format(self.iter)
        path = join_path(out_dir, filename, backend_args=backend_args)
        if runner.message_hub.get_info('last_ckpt') == path:
            return path  # the periodic checkpoint of this iteration
        # meta 'epoch' is the epoch in progress: a resume re-enters it.
        runner.save_checkpoint(
            out_dir,
            filename,
            meta=dict(epoch=self.epoch, iter=self.iter),
            backend_args=backend_args,
        )
        if is_main_process():
            pointer = osp.join(runner.work_dir, 'last_checkpoint')
            atomic_write_bytes(str(path).encode(), pointer)
        return path


@LOOPS.register_module()
class SafeIterBasedTrainLoop(SafeLoopMixin, IterBasedTrainLoop):
    """``IterBasedTrainLoop`` with exact resume and the SIGTERM save."""

    def run(self):
        """``IterBasedTrainLoop.run``, restoring the random state after
        the dataloader is fast-forwarded on resume."""
        with self.catching_stop_signals():
            self.runner.call_hook('before_train')
            self.runner.call_hook('before_train_epoch')
            loaded = self.resume_state()
            if self.iter > 0:
                print_log(
                    f'Advance dataloader {self.iter} steps to skip data '
                    'that has already been trained',
                    logger='current',
                )
                for _ in range(self.iter):
                    next(self.dataloader_iterator)
            self.restore(loaded)
            while self.iter < self.max_iters and not self.stop_training:
                self.runner.model.train()
                self.run_iter(next(self.dataloader_iterator))
                step = bisect.bisect(self.dynamic_milestones, self.iter + 1)
                self.val_interval = self.dynamic_intervals[step - 1]
                if (
                    self.runner.val_loop is not None
                    and self.iter >= self.val_begin
                    and (
                        self.iter % self.val_interval == 0
                        or self.iter == self.max_iters
                    )
                ):
                    self.runner.val_loop.run()
            self.runner.call_hook('after_train_epoch')
            self.runner.call_hook('after_train')
        return self.runner.model

    def run_iter(self, data_batch) -> None:
        """One iteration, then the stop-signal check.

        Args:
            data_batch: Batch from the dataloader.
        """
        super().run_iter(data_batch)
        self.stop_if_requested()


@LOOPS.register_module()
class SafeEpochBasedTrainLoop(SafeLoopMixin, EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` with exact (also mid-epoch) resume and the
    SIGTERM save. In the first epoch after a mid-epoch resume, hooks see
    batch indices counted from the first new batch."""

    def run(self):
        """Train with the stop signals caught."""
        with self.catching_stop_signals():
            return super().run()

    def run_epoch(self) -> None:
        """One epoch; after a resume, skip the batches already done."""
        loaded = self.resume_state()
        if loaded is None:
            return super().run_epoch()
        self.skipped = loaded['epoch_batches_done']
        if self.skipped:
            print_log(
                f'Resuming inside epoch {self.epoch + 1}: skipping its '
                f'first {self.skipped} batches, already trained on.',
                logger='current',
            )
        dataloader = self.dataloader
        self.dataloader = SkipFirstBatches(
            dataloader, self.skipped, lambda: self.restore(loaded)
        )
        try:
            super().run_epoch()
        finally:
            self.dataloader, self.skipped = dataloader, 0

    def run_iter(self, idx: int, data_batch) -> None:
        """One iteration, then the stop-signal check.

        Args:
            idx (int): Index of the batch in this pass over the epoch.
            data_batch: Batch from the dataloader.
        """
        self.batches_done = self.skipped + idx + 1
        super().run_iter(idx, data_batch)
        self.stop_if_requested()
