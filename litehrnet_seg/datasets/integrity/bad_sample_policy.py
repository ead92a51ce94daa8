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

Only a :class:`~.checks.DataError` makes a sample bad: raised by the
checked loaders and ``CheckSegSample`` in the pipeline, or by the
dataset's load-time checks of its annotations (dropped when the dataset
is built, unless every sample is bad). Any other error is a bug and
always raises. In test mode (validation, testing) bad samples always
raise, whatever the policy: evaluation needs every sample.

The count lives in shared memory (:class:`SkipCounter`), so that skips in
dataloader worker processes (``num_workers > 0``) are counted too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mmengine.logging import print_log

from .checks import DataError
from .skip_counter import SkipCounter

__all__ = [
    'BAD_SAMPLE_POLICIES',
    'BadSamplePolicyMixin',
    'collect_data_errors',
    'iter_datasets',
]

BAD_SAMPLE_POLICIES = ('raise', 'skip')
# How many bad samples an error message lists.
MAX_LISTED = 5
# Lists that collect load-time errors instead of raising them (innermost
# last); see collect_data_errors.
_collectors: list[list[DataError]] = []


@contextmanager
def collect_data_errors() -> Iterator[list[DataError]]:
    """Collect the load-time errors of the datasets built in the block.

    Inside the block, the annotation checks of a dataset being built append
    their :class:`DataError` s to the yielded list and drop the bad samples
    instead of raising (whatever the policy): the offline checker uses it
    to list every bad annotation.

    Yields:
        list[DataError]: Filled while the block runs.
    """
    found: list[DataError] = []
    _collectors.append(found)
    try:
        yield found
    finally:
        _collectors.remove(found)


def iter_datasets(dataset: Any) -> Iterator[Any]:
    """Yield the leaf datasets inside ``dataset`` (itself if a leaf).

    Wrappers are searched through their ``dataset`` / ``datasets``
    attributes (mmengine's ``ConcatDataset``, ``RepeatDataset``,
    ``ClassBalancedDataset``, :class:`MultiTaskDataset`).

    Args:
        dataset (Any): A dataset or dataset wrapper.

    Yields:
        Any: Each leaf dataset.
    """
    inner = getattr(dataset, 'datasets', None)
    if isinstance(inner, dict):
        inner = list(inner.values())
    children = list(inner) if isinstance(inner, list | tuple) else []
    if getattr(dataset, 'dataset', None) is not None:
        children.append(dataset.dataset)
    if not children:
        yield dataset
    for child in children:
        yield from iter_datasets(child)


class BadSamplePolicyMixin:
    """Add ``bad_sample_policy`` to an mmengine ``BaseDataset`` subclass.

    Put it first among the bases (``class D(BadSamplePolicyMixin,
    BaseDataset)``). Subclasses hand the errors of their load-time checks
    to :meth:`reject_samples`; pipeline errors are handled by
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
        if bad_sample_policy not in BAD_SAMPLE_POLICIES:
            valid = ', '.join(repr(p) for p in BAD_SAMPLE_POLICIES)
            raise ValueError(
                f'{type(self).__name__}: bad_sample_policy must be one of '
                f'{valid}, got {bad_sample_policy!r}'
            )
        # Before super().__init__(), which may load (and check) the data.
        self.bad_sample_policy = bad_sample_policy
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

    def _log_skip(self, what: str) -> None:
        count = self.bad_sample_counter.increment()
        print_log(
            f'{type(self).__name__}: skipped bad {what} '
            f"[{count} skipped so far, bad_sample_policy='skip']",
            logger='current',
            level=logging.WARNING,
        )

    def reject_samples(
        self, errors: list[DataError], total: int, hint: str = ''
    ) -> None:
        """Apply the policy to the samples that failed load-time checks.

        Args:
            errors (list[DataError]): One error per bad sample.
            total (int): Number of samples checked (bad ones included).
            hint (str): Appended to the raised message (e.g. how to fix).

        Raises:
            DataError: Listing the bad samples (up to 5), unless they are
                skipped (then each is logged and counted and the caller
                drops them) or collected (see :func:`collect_data_errors`).
                Skipping still raises when every sample is bad.
        """
        if not errors:
            return
        if _collectors:
            _collectors[-1].extend(errors)
            return
        if self.skips_bad_samples and len(errors) < total:
            for err in errors:
                self._log_skip(f'sample: {err}')
            return
        listed = '\n'.join(f'  {err}' for err in errors[:MAX_LISTED])
        more = (
            f' (first {MAX_LISTED} listed)' if len(errors) > MAX_LISTED else ''
        )
        raise DataError(
            f'{type(self).__name__}: {len(errors)} of {total} samples are '
            f'bad{more}:\n{listed}' + (f'\n{hint}' if hint else ''),
            errors[0].path,
            errors[0].kind,
            errors[0].field,
        )

    def _describe_sample(self, idx: int) -> str:
        """The files of sample ``idx``, for messages."""
        try:
            info = self.get_data_info(idx)  # type: ignore[attr-defined]
        except Exception:  # describing must not hide the real error
            return f'sample {idx}'
        files = [
            f'{key} {info[key]}'
            for key in ('img_path', 'seg_map_path')
            if info.get(key)
        ]
        names = f' ({", ".join(files)})' if files else ''
        return f'sample {idx}{names}'

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline on sample ``idx``, applying the policy.

        Args:
            idx (int): The sample index.

        Returns:
            Any: The pipeline output; None (so that mmengine's
            ``__getitem__`` fetches another sample) for a bad sample under
            the 'skip' policy.

        Raises:
            Exception: The pipeline's error under the 'raise' policy, in
                test mode or when it is not a :class:`DataError` (with a
                note naming the sample's files), or ``RuntimeError`` after
                more than ``max_refetch`` bad samples in a row.
        """
        try:
            data = super().prepare_data(idx)  # type: ignore[misc]
        except DataError as err:
            if not self.skips_bad_samples:
                hint = (
                    ''
                    if self.test_mode
                    else ("; bad_sample_policy='skip' skips such samples")
                )
                err.add_note(
                    f'{type(self).__name__}: while loading '
                    f'{self._describe_sample(idx)}{hint}'
                )
                raise
            self._bad_in_a_row += 1
            sample = self._describe_sample(idx)
            if self._bad_in_a_row > self.max_refetch:
                raise RuntimeError(
                    f'{type(self).__name__}: {self._bad_in_a_row} bad '
                    f'samples in a row (more than max_refetch='
                    f'{self.max_refetch}): the data or the pipeline is '
                    f'broken, not a few samples. Last: {sample}: {err}'
                ) from err
            self._log_skip(f'{sample}: {err}')
            return None
        except Exception as err:
            err.add_note(
                f'{type(self).__name__}: while loading '
                f'{self._describe_sample(idx)} (not a data error: not '
                'skipped)'
            )
            raise
        if data is not None:
            self._bad_in_a_row = 0
        return data
