"""A skip count shared with the dataloader worker processes."""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import get_spawning_popen
from typing import Any

from torch.utils.data import get_worker_info

__all__ = ['SkipCounter']


class SkipCounter:
    """A counter shared with the dataloader worker processes.

    It lives in shared memory (a ``multiprocessing.RawArray`` with one
    slot per process: this process, then dataloader worker ``i`` in slot
    ``1 + i``), so that each slot has a single writer and no lock is
    needed, whatever the workers' start method. Any other copy
    (``copy.deepcopy``, ``pickle.dumps``) gets a detached counter that
    starts from the current value. Without shared memory (e.g. no
    ``/dev/shm``) it falls back to a per-process count.
    """

    # Slot 0: the process that built the dataset; then one per worker.
    NUM_SLOTS = 64

    def __init__(self) -> None:
        self._local = 0
        self._shared: Any = None
        try:
            self._shared = multiprocessing.RawArray('q', self.NUM_SLOTS)
        except (OSError, ImportError):  # no shared memory on this system
            self._shared = None

    @property
    def shared(self) -> bool:
        """Whether counts from other processes are seen."""
        return self._shared is not None

    @property
    def value(self) -> int:
        """The current count (over this process and its workers)."""
        if self._shared is None:
            return self._local
        return int(sum(self._shared))

    def increment(self) -> int:
        """Add one; return the new total."""
        if self._shared is None:
            self._local += 1
            return self._local
        worker = get_worker_info()
        slot = 0 if worker is None else 1 + worker.id % (self.NUM_SLOTS - 1)
        self._shared[slot] += 1
        return self.value

    def __getstate__(self) -> dict:
        if self._shared is not None and get_spawning_popen() is not None:
            # Starting a worker process: share the memory.
            return {'shared': self._shared, 'local': 0}
        return {'shared': None, 'local': self.value}

    def __setstate__(self, state: dict) -> None:
        self._shared = state['shared']
        self._local = state['local']

    def __repr__(self) -> str:
        return f'SkipCounter(value={self.value}, shared={self.shared})'
