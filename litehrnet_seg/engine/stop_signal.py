"""Turn SIGTERM (Slurm pre-emption) into a flag checked between iterations.

Slurm sends SIGTERM, then SIGKILL some seconds later. The handler only
records the signal; the training loop checks the flag after each
iteration, saves a checkpoint and exits.
"""

import functools
import os
import signal
import threading
from collections.abc import Callable, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size

__all__ = ['StopSignal', 'shield_worker_init_fn']


def signal_number(sig: str | int) -> signal.Signals:
    """``'SIGTERM'``, ``'TERM'`` or ``15`` -> ``signal.SIGTERM``.

    Args:
        sig (str | int): Signal name or number.

    Returns:
        signal.Signals: The signal.
    """
    if isinstance(sig, str):
        name = sig.upper()
        name = name if name.startswith('SIG') else f'SIG{name}'
        if not hasattr(signal, name):
            raise ValueError(
                f'Unknown signal {sig!r} in train_cfg.stop_signals; '
                "expected a name such as 'SIGTERM' or 'SIGUSR1'"
            )
        return signal.Signals(getattr(signal, name))
    return signal.Signals(sig)


class StopSignal:
    """Records the first of ``signals`` received while installed.

    Args:
        signals (Sequence[str | int]): Signals to catch, e.g.
            ``('SIGTERM', 'SIGUSR1')`` for ``sbatch --signal=USR1@120``.
    """

    def __init__(self, signals: Sequence[str | int]) -> None:
        self.signals = tuple(signal_number(s) for s in signals)
        self.received: signal.Signals | None = None
        self.previous: dict = {}

    def handle(self, signum: int, frame) -> None:
        """Signal handler: only record (saving here could deadlock)."""
        if self.received is None:
            self.received = signal.Signals(signum)

    def install(self) -> bool:
        """Install the handlers; False when not in the main thread."""
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
        """Whether any rank received a signal (one all-reduce per call,
        so that all ranks stop after the same iteration)."""
        flag = float(self.received is not None)
        if get_world_size() > 1:
            tensor = torch.tensor([flag])
            all_reduce(tensor, op='max')
            flag = float(tensor.item())
        return flag > 0


def filter_signals_in_worker(
    worker_id: int,
    signals: tuple[int, ...],
    main_pid: int,
    init_fn: Callable[[int], None] | None = None,
) -> None:
    """DataLoader ``worker_init_fn``: survive ``signals`` from outside.

    Slurm signals every process of the job; a dataloader worker killed by
    SIGTERM makes the training process fail before it can save. The worker
    blocks ``signals`` and a thread takes them: sent by the training
    process (its shutdown of the workers) the worker exits at once; sent by
    anyone else the signal is ignored. Then chains to ``init_fn``.

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


def shield_worker_init_fn(
    init_fn: Callable[[int], None] | None, signals: Sequence[int]
) -> Callable[[int], None] | None:
    """``init_fn`` extended by :func:`filter_signals_in_worker`.

    Args:
        init_fn (Callable, optional): The dataloader's ``worker_init_fn``.
        signals (Sequence[int]): Signals the workers should survive.

    Returns:
        Callable | None: The new ``worker_init_fn``; ``init_fn`` unchanged
        where signals cannot be filtered (no ``sigwaitinfo``: macOS,
        Windows) or there is nothing to filter.
    """
    if not signals or not hasattr(signal, 'sigwaitinfo'):
        return init_fn
    return functools.partial(
        filter_signals_in_worker,
        signals=tuple(int(s) for s in signals),
        main_pid=os.getpid(),
        init_fn=init_fn,
    )
