"""Save a checkpoint and stop cleanly when the job is asked to terminate.

Slurm pre-emption (and ``scancel``, and a time limit with a grace period)
sends SIGTERM, then SIGKILL some seconds later. Without this hook the
process dies at once and the work since the last periodic checkpoint is
lost. With it, the signal only sets a flag; at the end of the iteration in
progress the hook saves a checkpoint that ``--resume`` picks up, logs it
and exits.
"""

import functools
import os
import os.path as osp
import signal
import threading
from collections.abc import Callable, Sequence

import torch
from mmengine.dist import all_reduce, barrier, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmseg.registry import HOOKS

from .atomic_checkpoint import atomic_write_bytes

__all__ = ['PreemptionCheckpointHook']


def _signal_number(sig: str | int) -> signal.Signals:
    """``'SIGTERM'``, ``'TERM'`` or ``15`` -> ``signal.SIGTERM``."""
    if isinstance(sig, str):
        name = sig.upper()
        name = name if name.startswith('SIG') else f'SIG{name}'
        if not hasattr(signal, name):
            raise ValueError(f'Unknown signal {sig!r} in signals')
        return signal.Signals(getattr(signal, name))
    return signal.Signals(sig)


def _filter_signals_in_worker(
    worker_id: int,
    signals: tuple[int, ...],
    main_pid: int,
    init_fn: Callable[[int], None] | None = None,
) -> None:
    """DataLoader ``worker_init_fn``: survive ``signals`` from outside.

    Slurm signals every process of the job, dataloader workers included. A
    worker killed by SIGTERM makes the main process raise "DataLoader
    worker is killed by signal" in the middle of the iteration, before the
    checkpoint is saved. So the worker blocks ``signals`` and a thread
    takes them with ``sigwaitinfo``: sent by the main process (its
    shutdown, ``Process.terminate()``) the worker exits at once, as torch's
    own handler does; sent by anyone else it is ignored, and the worker
    keeps serving batches until the main process stops it. Then chains to
    the original ``worker_init_fn``.

    Args:
        worker_id (int): DataLoader worker index.
        signals (tuple[int, ...]): Signal numbers to filter.
        main_pid (int): PID of the training process.
        init_fn (Callable, optional): The original ``worker_init_fn``.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # threads inherit it

    def watch() -> None:
        while True:
            info = signal.sigwaitinfo(signals)
            if info.si_pid == main_pid:
                os._exit(0)

    threading.Thread(target=watch, name='signal-filter', daemon=True).start()
    if init_fn is not None:
        init_fn(worker_id)


@HOOKS.register_module()
class PreemptionCheckpointHook(Hook):
    """On SIGTERM, checkpoint at the end of the current iteration and exit.

    The signal handler only records the signal. After the iteration in
    progress (``after_train_iter``, after every other hook, so the
    periodic checkpoint and the logs of that iteration are written first)
    the hook saves a checkpoint, updates ``work_dir/last_checkpoint``, logs
    where it went and raises ``SystemExit(exit_code)``; ``tools/train.py
    CONFIG --resume`` continues from it.

    * Iteration-based training: the checkpoint is the configured
      ``CheckpointHook``'s own ``iter_{N}.pth`` (same name, rotation by
      ``max_keep_ckpts``, atomic with :class:`AtomicCheckpointHook`); if
      the periodic checkpoint of that iteration was just written, it is
      not written twice.
    * Epoch-based training: ``iter_{N}.pth`` holding the state in the
      middle of the epoch; with :class:`ExactResumeHook` a resume skips the
      batches of that epoch already trained on, without it mmengine
      restarts the epoch.

    In distributed runs the flag is reduced over ranks every iteration
    (one scalar all-reduce), so all ranks stop at the same iteration even
    if the signal reaches them at different times. SIGTERM arriving during
    validation is acted on after the next training iteration. Dataloader
    workers are made to survive the signals (see ``shield_workers``).

    Args:
        save_on_sigterm (bool): Install the handlers at all. Defaults to
            True.
        signals (Sequence[str | int]): Signals that trigger the save, e.g.
            ``('SIGTERM', 'SIGUSR1')`` for ``sbatch --signal=USR1@120``.
            Defaults to ``('SIGTERM',)``.
        exit_code (int): Exit status after the save. 0 (the default)
            reports a clean stop; use e.g. 143 if a wrapper script must
            tell a pre-empted run from a finished one.
        shield_workers (bool): Make the train dataloader's worker
            processes ignore ``signals`` unless the training process itself
            sends them (restarting workers started before training began).
            Defaults to True.
    """

    priority = 'LOWEST'

    def __init__(
        self,
        save_on_sigterm: bool = True,
        signals: Sequence[str | int] = ('SIGTERM',),
        exit_code: int = 0,
        shield_workers: bool = True,
    ) -> None:
        self.save_on_sigterm = save_on_sigterm
        self.signals = tuple(_signal_number(s) for s in signals)
        if not self.signals and save_on_sigterm:
            raise ValueError('signals must name at least one signal')
        self.exit_code = exit_code
        self.shield_workers = shield_workers
        self.received: signal.Signals | None = None
        self._previous: dict = {}

    # -- signal handling -----------------------------------------------------
    def _handle(self, signum: int, frame) -> None:
        # Only record: logging or saving here could deadlock on locks held
        # by the interrupted code.
        if self.received is None:
            self.received = signal.Signals(signum)

    def before_train(self, runner) -> None:
        """Install the signal handlers and shield dataloader workers.

        Args:
            runner (Runner): The runner.
        """
        if not self.save_on_sigterm:
            return
        if threading.current_thread() is not threading.main_thread():
            runner.logger.warning(
                f'{type(self).__name__}: training does not run in the main '
                'thread, so signal handlers cannot be installed; a SIGTERM '
                'will stop the job without a checkpoint.'
            )
            return
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)
        if self.shield_workers:
            self._shield_workers(runner)
        names = ', '.join(s.name for s in self.signals)
        runner.logger.info(
            f'On {names}: save a checkpoint after the current iteration '
            'and exit (resume with --resume).'
        )

    def after_train(self, runner) -> None:
        """Put the previous signal handlers back.

        Args:
            runner (Runner): The runner.
        """
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def _shield_workers(self, runner) -> None:
        """Make train dataloader workers ignore the signals."""
        loop = runner.train_loop
        dataloader = getattr(loop, 'dataloader', None)
        if not getattr(dataloader, 'num_workers', 0):
            return
        if not hasattr(signal, 'sigwaitinfo'):  # not on macOS/Windows
            runner.logger.warning(
                'Dataloader workers cannot filter signals on this platform; '
                'a SIGTERM sent to them too may stop training before the '
                'checkpoint is written.'
            )
            return
        dataloader.worker_init_fn = functools.partial(
            _filter_signals_in_worker,
            signals=tuple(int(s) for s in self.signals),
            main_pid=os.getpid(),
            init_fn=dataloader.worker_init_fn,
        )
        if not isinstance(loop, IterBasedTrainLoop):
            return  # epoch loops start their workers in each epoch
        # IterBasedTrainLoop started its workers when it was built, before
        # any hook ran: restart them so that they run the new init function.
        # Nothing has been drawn from them yet (a resume fast-forwards
        # later, in the loop's run()).
        try:
            old = getattr(dataloader, '_iterator', None)
            if old is not None:  # persistent workers are cached here
                dataloader._iterator = None
                old._shutdown_workers()
            loop.dataloader_iterator = type(loop.dataloader_iterator)(
                dataloader
            )
        except Exception as e:  # internals of torch/mmengine changed
            runner.logger.warning(
                f'Could not restart the dataloader workers ({e!r}); they may '
                'die on SIGTERM before the checkpoint is written.'
            )

    # -- acting on it ----------------------------------------------------
    def _stop_requested(self) -> bool:
        flag = float(self.received is not None)
        if get_world_size() > 1:
            tensor = torch.tensor([flag])
            all_reduce(tensor, op='max')
            flag = float(tensor.item())
        return flag > 0

    def after_train_iter(
        self, runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        """Save and exit if a signal arrived.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch.
            data_batch: Unused.
            outputs: Unused.
        """
        if not self._previous or not self._stop_requested():
            return
        path = self._save(runner)
        if get_world_size() > 1:
            barrier()  # every rank exits after the checkpoint is on disk
        name = self.received.name if self.received else 'a stop signal'
        where = (
            f'iteration {runner.iter + 1}'
            if isinstance(runner.train_loop, IterBasedTrainLoop)
            else f'epoch {runner.epoch + 1}, iteration {runner.iter + 1}'
        )
        runner.logger.info(
            f'Received {name}: saved checkpoint {path} at {where}. Exiting '
            f'with status {self.exit_code}; continue with `tools/train.py '
            'CONFIG --resume` (same work_dir).'
        )
        self._stop_workers(runner)
        raise SystemExit(self.exit_code)

    @staticmethod
    def _stop_workers(runner) -> None:
        """Shut the train dataloader's workers down before exiting.

        Through the dataloader's own shutdown protocol rather than leaving
        them to interpreter exit: iterators only reachable through
        reference cycles (``IterBasedTrainLoop``'s, persistent workers')
        would otherwise outlive the training loop until multiprocessing
        terminates them at exit.
        """
        loop = runner.train_loop
        dataloader = getattr(loop, 'dataloader', None)
        dataloader = getattr(dataloader, 'dataloader', dataloader)  # proxy
        candidates = (
            getattr(
                getattr(loop, 'dataloader_iterator', None), '_iterator', None
            ),
            getattr(dataloader, '_iterator', None),
        )
        for iterator in candidates:
            shutdown = getattr(iterator, '_shutdown_workers', None)
            if shutdown is None:
                continue
            try:
                shutdown()
            except Exception as e:  # internals of torch changed
                runner.logger.warning(
                    f'Could not stop the dataloader workers ({e!r}).'
                )

    def _save(self, runner) -> str:
        """Write the checkpoint; return its path."""
        ckpt_hook = next(
            (h for h in runner.hooks if isinstance(h, CheckpointHook)), None
        )
        step = runner.iter + 1
        if ckpt_hook is not None and not ckpt_hook.by_epoch:
            path = ckpt_hook.file_backend.join_path(
                ckpt_hook.out_dir, ckpt_hook.filename_tmpl.format(step)
            )
            if ckpt_hook.last_ckpt != path:  # not saved this iteration
                ckpt_hook._save_checkpoint(runner)
            return path
        # Mid-epoch (or no CheckpointHook): our own iter_{N}.pth. meta
        # 'epoch' is the epoch in progress, so a resume re-enters it.
        out_dir = runner.work_dir
        backend_args = None
        if ckpt_hook is not None:
            out_dir = ckpt_hook.out_dir
            backend_args = ckpt_hook.backend_args
        filename = f'iter_{step}.pth'
        runner.save_checkpoint(
            out_dir,
            filename,
            meta=dict(epoch=runner.epoch, iter=step),
            by_epoch=isinstance(runner.train_loop, EpochBasedTrainLoop),
            backend_args=backend_args,
        )
        path = osp.join(out_dir, filename)
        if is_main_process():
            atomic_write_bytes(
                path.encode(), osp.join(runner.work_dir, 'last_checkpoint')
            )
        return path
