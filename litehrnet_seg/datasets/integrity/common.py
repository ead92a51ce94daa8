"""Helpers shared by the dataset checkers: decoding, numbers, progress."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..transforms.check_seg_sample import _decode_error
from .report import Issue, Report

__all__ = [
    'bad_number_indices',
    'is_number',
    'load_json_file',
    'read_image',
    'run_checks',
    'shape_of',
]

T = TypeVar('T')


def read_image(
    path: str, what: str = 'image'
) -> tuple[np.ndarray | None, Issue | None]:
    """Fully decode an image file, as a strict loader would.

    Pillow is used because it reports truncated files (OpenCV silently
    fills a truncated JPEG with grey). The pixels are returned as stored
    (no colour conversion, 16-bit PNGs stay 16-bit).

    Args:
        path (str): The file; it must exist (check that first).
        what (str): ``'image'`` or ``'label'``: names the file in the
            message and selects the issue kind (``unreadable_image`` or
            ``unreadable_label``).

    Returns:
        tuple: ``(array, None)`` when the file decodes, else
        ``(None, issue)`` with an issue naming the file.
    """
    kind = 'unreadable_label' if what == 'label' else 'unreadable_image'
    try:
        if os.path.getsize(path) == 0:
            raise OSError('the file is empty (0 bytes)')
        with Image.open(path) as img:
            img.load()
            array = np.asarray(img)
    except Exception as err:  # Pillow raises many types for bad files
        message = str(_decode_error(what, path, err))
        return None, Issue(kind, path, message)
    return array, None


def load_json_file(path: str, what: str) -> tuple[Any, Issue | None]:
    """Load a json file, turning any failure into an issue naming it.

    Args:
        path (str): The json file.
        what (str): What it is, for the message (e.g. 'COCO annotation
            file').

    Returns:
        tuple: ``(content, None)`` on success, else ``(None, issue)`` of
        kind ``unreadable_annotation``.
    """
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f), None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, Issue(
            'unreadable_annotation',
            path,
            f'cannot read {what} {path} as json: {err}',
        )


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (bools are not).

    Args:
        value (Any): The value to test.

    Returns:
        bool: True for finite numbers (Python or numpy scalars).
    """
    if isinstance(value, bool | np.bool_):
        return False
    if not isinstance(value, int | float | np.integer | np.floating):
        return False
    return math.isfinite(float(value))


def run_checks(
    func: Callable[[T], list[Issue]],
    items: Sequence[T],
    nproc: int = 1,
    desc: str = 'checking',
    progress: bool = True,
) -> list[Issue]:
    """Run ``func`` on every item, with a progress bar; gather the issues.

    Args:
        func (Callable): A picklable (module-level) function returning the
            issues of one item.
        items (Sequence): The work items (picklable with ``nproc > 1``).
        nproc (int): Worker processes; 1 runs in this process.
        desc (str): Label of the progress bar.
        progress (bool): Whether to show the progress bar (on stderr).

    Returns:
        list[Issue]: The issues of all items, in item order.
    """
    if nproc < 1:
        raise ValueError(f'nproc must be >= 1, got {nproc}')
    issues: list[Issue] = []
    bar = tqdm(
        total=len(items),
        desc=desc,
        unit='file',
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    with bar:
        if nproc == 1 or len(items) < 2:
            for item in items:
                issues.extend(func(item))
                bar.update()
        else:
            chunk = max(1, min(32, len(items) // (4 * nproc)))
            with multiprocessing.Pool(nproc) as pool:
                for found in pool.imap(func, items, chunksize=chunk):
                    issues.extend(found)
                    bar.update()
    return issues


def bad_number_indices(values: Sequence[Any]) -> list[int]:
    """Indices of the entries of ``values`` that are not finite numbers.

    Args:
        values (Sequence): A flat sequence (e.g. a json list).

    Returns:
        list[int]: The offending indices (empty when all are numbers).
    """
    # Fast path for what json gives: plain ints and finite floats.
    if all(
        type(v) is int or (type(v) is float and math.isfinite(v))
        for v in values
    ):
        return []
    return [i for i, v in enumerate(values) if not is_number(v)]


def shape_of(value: Any) -> tuple | None:
    """Shape of a (nested) list, or None when it is ragged.

    Args:
        value (Any): A scalar, list or array.

    Returns:
        tuple | None: ``np.shape(value)``, or None for ragged nesting
        (numpy >= 1.24 raises on those).
    """
    try:
        return np.shape(value)
    except ValueError:
        return None


def check_annotated_folder(
    report: Report,
    pairs: Sequence[tuple[str, str]],
    name: str,
    expected: str,
    check_json: Callable[[Any, str, str], tuple[list[Issue], list]],
    check_image: Callable[[Any], list[Issue]],
    nproc: int,
    progress: bool,
) -> Report:
    """Shared scan of a keypoint dataset: annotation files, then images.

    Args:
        report (Report): Report to fill.
        pairs (Sequence[tuple[str, str]]): (annotation file, image folder)
            pairs found in the dataset folder.
        name (str): Dataset name for messages, e.g. 'COCO'.
        expected (str): Where an annotation file was expected, for the
            message when there is none.
        check_json (Callable): ``(content, path, folder) -> (issues,
            images)`` checking one annotation file.
        check_image (Callable): ``image -> issues`` for one listed image.
        nproc (int): Worker processes for the images.
        progress (bool): Show a progress bar.

    Returns:
        Report: ``report``.
    """
    if not pairs:
        report.add(
            [
                Issue(
                    'no_samples',
                    report.root,
                    f'no {name} annotation file found in {report.root}: '
                    f'expected {expected} or {name} json files in the folder '
                    '(or pass --ann-file)',
                )
            ]
        )
        return report
    images = []
    for path, folder in pairs:
        report.num_checked += 1
        if not os.path.isfile(path):
            message = f'{name} annotation file {path} does not exist'
            report.add([Issue('unreadable_annotation', path, message)])
            continue
        content, issue = load_json_file(path, f'{name} annotation file')
        if issue is not None:
            report.add([issue])
            continue
        issues, found = check_json(content, path, folder)
        report.add(issues)
        images.extend(found)
    report.add(
        run_checks(
            check_image, images, nproc, f'{name.lower()} images', progress
        )
    )
    report.num_checked += len(images)
    return report
