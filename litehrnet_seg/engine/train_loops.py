"""Training loops that resume exactly and stop cleanly on SIGTERM.

mmengine restores model, optimizer, schedulers and the iteration counter
on ``--resume``, but re-seeds the global random generators (so dropout
masks and main-process augmentations after a resume differ from an
uninterrupted run), and an ``EpochBasedTrainLoop`` can only resume at an
epoch boundary. :class:`SafeIterBasedTrainLoop` and
:class:`SafeEpochBasedTrainLoop` (``train_cfg.type``) add, with every
argument of the loops they extend:

* every checkpoint stores the random state (and, mid-epoch, how many
  batches of the epoch are done); a resume restores it right before the
  first new batch, after skipping the batches already trained on;
* the signals in ``stop_signals`` (SIGTERM: Slurm pre-emption) only set a
  flag; after the iteration in progress the loop writes ``iter_{N}.pth``,
  points ``last_checkpoint`` at it and exits with ``exit_code``.
  Dataloader workers ignore those signals unless the training process
  sends them, so a signal to the whole job does not kill them first.
"""

import bisect
import contextlib
import os.path as osp
from collections.abc import Callable, Sequence

from mmengine.dist import barrier, get_world_size, is_main_process
from mmengine.fileio import join_path
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmseg.registry import LOOPS

from .atomic_backend import atomic_write_bytes
from .rng_state import get_rng_state, set_rng_state
from .stop_signal import StopSignal, shield_worker_init_fn

__all__ = ['SafeEpochBasedTrainLoop', 'SafeIterBasedTrainLoop']

STATE_KEY = 'resume_state'


def diff_rank_seed(runner) -> bool:
    """``randomness.diff_rank_seed`` of the runner's config."""
    return bool((runner.cfg.get('randomness') or {}).get('diff_rank_seed'))


class ResumeStateHook(Hook):
    """Carries a loop's resume state in and out of checkpoints.

    Registered by the loop itself, so no config has to list it.

    Args:
        loop (SafeLoopMixin): The loop whose state it saves and loads.
    """

    priority = 'VERY_HIGH'  # before CheckpointHook saves at epoch end

    def __init__(self, loop: 'SafeLoopMixin') -> None:
        self.loop = loop

    def after_train_epoch(self, runner) -> None:
        """An epoch-end checkpoint is not mid-epoch."""
        self.loop.batches_done = 0

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add ``resume_state``: random state and batches done in the
        epoch (non-zero only in mid-epoch checkpoints of epoch loops)."""
        checkpoint[STATE_KEY] = dict(
            rng=get_rng_state(), epoch_batches_done=self.loop.batches_done
        )

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the loaded state until training starts."""
        state = checkpoint.get(STATE_KEY)
        meta = checkpoint.get('meta') or {}
        self.loop.loaded = None
        if state is not None and 'iter' in meta:
            self.loop.loaded = dict(state, iter=meta['iter'])


class SkipFirstBatches:
    """Dataloader view for the first epoch after a resume: iterating it
    drops the first ``skip`` batches (already trained on) and calls
    ``restore`` right before the first new batch. Other attributes (e.g.
    ``sampler``) and ``len`` are those of the wrapped dataloader.
    """

    def __init__(
        self, dataloader, skip: int, restore: Callable[[], None]
    ) -> None:
        self.dataloader = dataloader
        self.skip = skip
        self.restore = restore

    def __iter__(self):
        if not self.skip:
            self.restore()  # before iter(): it draws a base seed
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
    """What both safe loops add; see the module docstring.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The train dataloader (or config).
        *args: Positional arguments of the extended loop.
        stop_signals (Sequence[str | int]): Signals that trigger the save
            and exit; ``()`` disables it. Defaults to ``('SIGTERM',)``.
        exit_code (int): Exit status after that save. 0 (default) reports
            a clean stop; e.g. 143 lets a wrapper tell a pre-empted run from
            a finished one.
        shield_workers (bool): Make dataloader workers ignore
            ``stop_signals`` unless the training process sends them.
            Defaults to True.
        restore_rng (bool): Restore the random state on resume. Skipped in
            multi-process runs with ``randomness.diff_rank_seed=True``,
            where ranks keep the re-seeded state. Defaults to True.
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
            # Built here, not by the base class, so that the workers get
            # the signal filter before the iteration-based loop starts them.
            dataloader = runner.build_dataloader(
                dataloader,
                seed=runner.seed,
                diff_rank_seed=diff_rank_seed(runner),
            )
        if shield_workers and getattr(dataloader, 'num_workers', 0):
            dataloader.worker_init_fn = shield_worker_init_fn(
                dataloader.worker_init_fn, self.stop.signals
            )
        super().__init__(runner, dataloader, *args, **kwargs)
        runner.register_hook(ResumeStateHook(self))

    @contextlib.contextmanager
    def stop_signal_installed(self):
        """Catch ``stop_signals`` while training runs."""
        if self.stop.signals and self.stop.install():
            names = ', '.join(s.name for s in self.stop.signals)
            print_log(
                f'On {names}: save a checkpoint after the current iteration '
                'and exit (resume with --resume).',
                logger='current',
            )
        elif self.stop.signals:
            print_log(
                'Training does not run in the main thread: no signal '
                'handlers, so a SIGTERM stops it without a checkpoint.',
                logger='current',
                level='WARNING',
            )
        try:
            yield
        finally:
            self.stop.uninstall()

    def take_resume_state(self) -> dict | None:
        """The loaded resume state if this run resumes from it, once."""
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
    """``IterBasedTrainLoop`` with exact resume and SIGTERM save.

    Args: see :class:`SafeLoopMixin` and ``IterBasedTrainLoop``.
    """

    def run(self):
        """Train, as ``IterBasedTrainLoop.run`` does, restoring the random
        state after the dataloader is fast-forwarded on resume."""
        with self.stop_signal_installed():
            self.runner.call_hook('before_train')
            self.runner.call_hook('before_train_epoch')
            loaded = self.take_resume_state()
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
                milestone = bisect.bisect(
                    self.dynamic_milestones, self.iter + 1
                )
                self.val_interval = self.dynamic_intervals[milestone - 1]
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
    """``EpochBasedTrainLoop`` with exact (also mid-epoch) resume and
    SIGTERM save. In the first epoch after a mid-epoch resume, hooks see
    batch indices counted from the first new batch.

    Args: see :class:`SafeLoopMixin` and ``EpochBasedTrainLoop``.
    """

    def run(self):
        """Train with the stop signals caught."""
        with self.stop_signal_installed():
            return super().run()

    def run_epoch(self) -> None:
        """One epoch; after a resume, skip the batches already done."""
        loaded = self.take_resume_state()
        if loaded is None:
            super().run_epoch()
            return
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
            self.dataloader = dataloader
            self.skipped = 0

    def run_iter(self, idx: int, data_batch) -> None:
        """One iteration, then the stop-signal check.

        Args:
            idx (int): Index of the batch in this run of the epoch.
            data_batch: Batch from the dataloader.
        """
        self.batches_done = self.skipped + idx + 1
        super().run_iter(idx, data_batch)
        self.stop_if_requested()
