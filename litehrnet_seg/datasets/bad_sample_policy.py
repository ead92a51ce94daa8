"""What a dataset does with a bad sample: ``'raise'`` or ``'skip'`` it.

:class:`BadSamplePolicyMixin` adds the ``bad_sample_policy`` argument to an
mmengine ``BaseDataset`` subclass (``CheckedCityscapesDataset``, the pose
datasets):

* ``'raise'`` (default): the first bad sample stops the run with an error
  naming its file.
* ``'skip'``: a bad sample is logged (a warning naming its file and the
  error, with the running count), counted, and replaced by another one.
  Replacement uses mmengine's own mechanism: ``prepare_data`` returns
  None and ``BaseDataset.__getitem__`` draws another index (at most
  ``max_refetch`` times in a row, then it raises naming the last error).

A sample is bad when its pipeline raises one of :data:`SKIPPABLE_ERRORS`
(unreadable or missing image, label ids outside the valid set, size
mismatch, ...), or, while the dataset is built, when its annotation fails
the dataset's checks (COCO keypoint array of the wrong length, MPII joints
of the wrong shape, NaN values, Cityscapes image without label, ...).
Other errors (``KeyError``, ``TypeError``, ...) are bugs and always raise.

In test mode (validation, testing) bad samples always raise, whatever the
policy: evaluation needs every sample.

The count lives in shared memory (:class:`SkipCounter`), so that skips in
dataloader worker processes (``num_workers > 0``) are counted too; each
skip is also logged from the process where it happened.
"""

from __future__ import annotations

import logging
import multiprocessing
from multiprocessing.context import get_spawning_popen
from typing import Any

import cv2
from mmengine.logging import print_log
from torch.utils.data import get_worker_info

__all__ = [
    'BAD_SAMPLE_POLICIES',
    'SKIPPABLE_ERRORS',
    'BadSamplePolicyMixin',
    'SkipCounter',
    'check_bad_sample_policy',
]

BAD_SAMPLE_POLICIES = ('raise', 'skip')
# Errors that the data (not the code) causes: decoding (OSError, mmcv's
# "failed to load image" AssertionError, cv2.error), missing files
# (FileNotFoundError is an OSError) and failed checks (ValueError).
SKIPPABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    AssertionError,
    cv2.error,
)


def check_bad_sample_policy(policy: Any, owner: str = 'dataset') -> str:
    """Validate a ``bad_sample_policy`` value.

    Args:
        policy (Any): The value to check.
        owner (str): Name used in the message (e.g. the dataset class).

    Returns:
        str: ``policy``, when valid.

    Raises:
        ValueError: If ``policy`` is not one of :data:`BAD_SAMPLE_POLICIES`;
            the message lists the valid ones.
    """
    if policy not in BAD_SAMPLE_POLICIES:
        valid = ', '.join(repr(p) for p in BAD_SAMPLE_POLICIES)
        raise ValueError(
            f'{owner}: bad_sample_policy must be one of {valid}, got '
            f'{policy!r}'
        )
    return policy


class SkipCounter:
    """A counter shared with the dataloader worker processes.

    It lives in shared memory (a ``multiprocessing.RawArray`` with one
    slot per process: this process, then dataloader worker ``i`` in slot
    ``1 + i``), so that each slot has a single writer and no lock is
    needed, whatever the workers' start method. Workers started by fork
    inherit it; workers started by spawn/forkserver receive it while the
    process is started. Any other copy (``copy.deepcopy``,
    ``pickle.dumps``) gets a detached counter that starts from the current
    value. Without shared memory (e.g. no ``/dev/shm``) it falls back to a
    per-process count.
    """

    # Slot 0: the process that built the dataset; then one per worker
    # (workers beyond that share slots, which may lose a simultaneous
    # increment).
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


class BadSamplePolicyMixin:
    """Add ``bad_sample_policy`` to an mmengine ``BaseDataset`` subclass.

    Put it first among the bases (``class D(BadSamplePolicyMixin,
    BaseDataset)``). Subclasses report load-time problems of one sample
    through :meth:`bad_sample` and have their pipeline errors handled by
    :meth:`prepare_data`. See the module docstring for the behaviour.

    Args:
        bad_sample_policy (str): ``'raise'`` (default) or ``'skip'``.
        *args: Positional arguments of the dataset base class.
        **kwargs: Keyword arguments of the dataset base class.

    Raises:
        ValueError: If ``bad_sample_policy`` is not valid.
    """

    # Set by BaseDataset.__init__.
    test_mode: bool
    max_refetch: int

    def __init__(
        self, *args, bad_sample_policy: str = 'raise', **kwargs
    ) -> None:
        # Before super().__init__(), which may load (and check) the data.
        self.bad_sample_policy = check_bad_sample_policy(
            bad_sample_policy, type(self).__name__
        )
        self.bad_sample_counter = SkipCounter()
        self._bad_in_a_row = 0
        super().__init__(*args, **kwargs)
        if bad_sample_policy == 'skip' and self.test_mode:
            print_log(
                f"{type(self).__name__}: bad_sample_policy='skip' has no "
                'effect in test mode (every sample is needed for '
                'evaluation): bad samples raise.',
                logger='current',
                level=logging.WARNING,
            )

    @property
    def skips_bad_samples(self) -> bool:
        """Whether bad samples are skipped (policy 'skip', not test mode)."""
        return self.bad_sample_policy == 'skip' and not self.test_mode

    @property
    def num_skipped(self) -> int:
        """How many bad samples were skipped (across worker processes)."""
        return self.bad_sample_counter.value

    def bad_sample(
        self,
        message: str,
        error_type: type[Exception] = ValueError,
    ) -> None:
        """Report a bad sample found while loading the annotations.

        Args:
            message (str): What is wrong; it names the file (and field).
            error_type (type): The error raised under the 'raise' policy.

        Raises:
            Exception: ``error_type(message)`` unless bad samples are
                skipped; then the sample is logged and counted, and the
                caller drops it.
        """
        if not self.skips_bad_samples:
            raise error_type(message)
        count = self.bad_sample_counter.increment()
        print_log(
            f'{type(self).__name__}: skipped bad sample: {message} '
            f"[{count} skipped so far, bad_sample_policy='skip']",
            logger='current',
            level=logging.WARNING,
        )

    def _describe_sample(self, idx: int) -> str:
        """The files of sample ``idx``, for messages."""
        try:
            info = self.get_data_info(idx)  # type: ignore[attr-defined]
        except Exception:  # the message must not fail
            return f'sample {idx}'
        files = [
            f'{key} {info[key]}'
            for key in ('img_path', 'seg_map_path')
            if info.get(key)
        ]
        if not files:
            return f'sample {idx}'
        return f'sample {idx} ({", ".join(files)})'

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline on sample ``idx``, applying the policy.

        Args:
            idx (int): The sample index.

        Returns:
            Any: The pipeline output; None (so that mmengine's
            ``__getitem__`` fetches another sample) for a bad sample under
            the 'skip' policy.

        Raises:
            Exception: The pipeline's error under the 'raise' policy or in
                test mode (with a note naming the sample's files), or
                ``RuntimeError`` after more than ``max_refetch`` bad samples
                in a row.
        """
        if not self.skips_bad_samples:
            try:
                return super().prepare_data(idx)  # type: ignore[misc]
            except Exception as err:
                if hasattr(err, 'add_note'):  # Python >= 3.11
                    hint = (
                        ''
                        if self.test_mode
                        else "; bad_sample_policy='skip' skips such samples"
                    )
                    err.add_note(
                        f'{type(self).__name__}: while loading '
                        f'{self._describe_sample(idx)}{hint}'
                    )
                raise
        try:
            data = super().prepare_data(idx)  # type: ignore[misc]
        except SKIPPABLE_ERRORS as err:
            sample = self._describe_sample(idx)
            count = self.bad_sample_counter.increment()
            self._bad_in_a_row += 1
            reason = f'{type(err).__name__}: {str(err).strip()}'
            if self._bad_in_a_row > self.max_refetch:
                raise RuntimeError(
                    f'{type(self).__name__}: {self._bad_in_a_row} bad '
                    f'samples in a row (more than max_refetch='
                    f'{self.max_refetch}): the data or the pipeline is '
                    f'broken, not a few samples. Last: {sample}: {reason}'
                ) from err
            print_log(
                f'{type(self).__name__}: skipped bad {sample}: {reason} '
                f"[{count} skipped so far, bad_sample_policy='skip']",
                logger='current',
                level=logging.WARNING,
            )
            return None
        if data is not None:
            self._bad_in_a_row = 0
        return data
