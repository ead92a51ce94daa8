"""A skip count shared with the dataloader worker processes."""

import torch
from torch.utils.data import get_worker_info

__all__ = ['SkipCounter']


class SkipCounter:
    """A counter shared with the dataloader worker processes.

    The counts live in a shared-memory tensor with one slot per process
    (this process, then dataloader worker ``i`` in slot ``1 + i``), so each
    slot has a single writer and no lock is needed. Workers see the same
    memory whatever their start method: forked workers inherit it and
    spawned ones receive it through torch's multiprocessing pickler. Any
    other copy (``copy.deepcopy``, ``pickle.dumps``) is detached and starts
    from the current counts. Without shared memory (e.g. no ``/dev/shm``)
    each process counts on its own.
    """

    # Slot 0: the process that built the dataset; then one per worker.
    NUM_SLOTS = 64

    def __init__(self) -> None:
        self.counts = torch.zeros(self.NUM_SLOTS, dtype=torch.int64)
        try:
            self.counts.share_memory_()
        except (RuntimeError, OSError):  # no shared memory on this system
            pass

    @property
    def shared(self) -> bool:
        """Whether counts from other processes are seen."""
        return self.counts.is_shared()

    @property
    def value(self) -> int:
        """The current count (over this process and its workers)."""
        return int(self.counts.sum())

    def increment(self) -> int:
        """Add one; return the new total."""
        worker = get_worker_info()
        slot = 0 if worker is None else 1 + worker.id % (self.NUM_SLOTS - 1)
        self.counts[slot] += 1
        return self.value

    def __repr__(self) -> str:
        return f'SkipCounter(value={self.value}, shared={self.shared})'
