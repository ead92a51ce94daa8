"""Turn SIGTERM (Slurm pre-emption) into a flag checked between iterations.

Slurm sends SIGTERM to every process of the job, then SIGKILL some seconds
later. The handler only records the signal (saving inside it could
deadlock); the training loop checks the flag after each iteration.
"""

import os
import signal
import threading
from collections.abc import Callable, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size

__all__ = ['StopSignal', 'filter_signals_in_worker']


def to_signal(sig: str | int) -> signal.Signals:
    """``'SIGTERM'``, ``'TERM'`` or ``15`` -> ``signal.SIGTERM``."""
    if isinstance(sig, int):
        return signal.Signals(sig)
    name = sig.upper() if sig.upper().startswith('SIG') else f'SIG{sig}'
    try:
        return signal.Signals[name.upper()]
    except KeyError:
        raise ValueError(
            f'train_cfg.stop_signals: unknown signal {sig!r}; expected a '
            "name such as 'SIGTERM' or 'SIGUSR1'"
        ) from None


class StopSignal:
    """Records the first of ``signals`` received while installed.

    Args:
        signals (Sequence[str | int]): Signal names or numbers, e.g.
            ``('SIGTERM', 'SIGUSR1')`` for ``sbatch --signal=USR1@120``.
    """

    def __init__(self, signals: Sequence[str | int]) -> None:
        self.signals = tuple(map(to_signal, signals))
        self.received: signal.Signals | None = None
        self.previous: dict = {}

    def handle(self, signum: int, frame) -> None:
        """Signal handler: only record."""
        self.received = self.received or signal.Signals(signum)

    def install(self) -> bool:
        """Install the handlers; False outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in self.signals:
            self.previous[signum] = signal.signal(signum, self.handle)
        return True

    def uninstall(self) -> None:
        """Put the previous handlers back."""
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        self.previous = {}

    def requested(self) -> bool:
        """Whether any rank received a signal (one all-reduce per call, so
        that all ranks stop after the same iteration)."""
        flag = torch.tensor([float(self.received is not None)])
        if get_world_size() > 1:
            all_reduce(flag, op='max')
        return bool(flag.item() > 0)


def filter_signals_in_worker(
    worker_id: int,
    signals: tuple[int, ...],
    main_pid: int,
    init_fn: Callable[[int], None] | None = None,
) -> None:
    """DataLoader ``worker_init_fn``: survive ``signals`` from outside.

    A worker killed by the job-wide SIGTERM makes the training process fail
    before it can save. So the worker blocks ``signals`` and a thread takes
    them: sent by the training process (shutting its workers down) the
    worker exits at once; sent by anyone else the signal is ignored. Then
    chains to ``init_fn``.

    Args:
        worker_id (int): DataLoader worker index.
        signals (tuple[int, ...]): Signal numbers to filter.
        main_pid (int): PID of the training process.
        init_fn (Callable, optional): The original ``worker_init_fn``.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # threads inherit it

    def watch() -> None:
        while True:
            if signal.sigwaitinfo(signals).si_pid == main_pid:
                os._exit(0)

    threading.Thread(target=watch, name='signal-filter', daemon=True).start()
    if init_fn is not None:
        init_fn(worker_id)
