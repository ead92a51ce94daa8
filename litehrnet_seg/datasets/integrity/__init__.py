"""Offline integrity checks of dataset folders (Cityscapes, COCO, MPII).

Use :func:`check_dataset` (or ``tools/misc/check_dataset.py``) to scan a
folder before training; it returns a :class:`Report` of :class:`Issue`
findings, each naming the offending file (and field).
"""

from __future__ import annotations

import glob
import os.path as osp

from .cityscapes import check_cityscapes
from .coco import check_coco, check_coco_annotation
from .mpii import check_mpii, check_mpii_entry
from .report import ERROR, ISSUE_KINDS, WARNING, Issue, Report

__all__ = [
    'DATASET_TYPES',
    'ERROR',
    'ISSUE_KINDS',
    'WARNING',
    'Issue',
    'Report',
    'check_cityscapes',
    'check_coco',
    'check_coco_annotation',
    'check_dataset',
    'check_mpii',
    'check_mpii_entry',
    'detect_dataset_type',
]

DATASET_TYPES = ('cityscapes', 'coco', 'mpii')


def detect_dataset_type(root: str) -> str:
    """Guess the dataset type of a folder from its layout.

    * ``leftImg8bit/`` or ``gtFine/`` -> ``'cityscapes'``;
    * ``annotations/person_keypoints_*.json``, or a json in the folder that
      is an object with ``"images"`` -> ``'coco'``;
    * ``annotations/mpii_*.json``, or a json in the folder that is a list
      of entries with ``"joints"`` -> ``'mpii'``.

    Args:
        root (str): The dataset folder.

    Returns:
        str: One of :data:`DATASET_TYPES`.

    Raises:
        ValueError: If the layout matches none or several types; the
            message names the folder and what was looked for.
    """
    from .coco import _looks_like_coco
    from .mpii import _looks_like_mpii

    found = []
    if osp.isdir(osp.join(root, 'leftImg8bit')) or osp.isdir(
        osp.join(root, 'gtFine')
    ):
        found.append('cityscapes')
    ann_dir = osp.join(root, 'annotations')
    jsons = sorted(glob.glob(osp.join(root, '*.json')))
    if glob.glob(osp.join(ann_dir, 'person_keypoints_*.json')) or any(
        _looks_like_coco(f) for f in jsons
    ):
        found.append('coco')
    if glob.glob(osp.join(ann_dir, 'mpii_*.json')) or any(
        _looks_like_mpii(f) for f in jsons
    ):
        found.append('mpii')
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValueError(
            f'cannot tell the dataset type of {root}: expected leftImg8bit/ '
            '(Cityscapes), annotations/person_keypoints_*.json or a COCO '
            'json (COCO), annotations/mpii_*.json or an MPII json (MPII); '
            'pass --type'
        )
    raise ValueError(
        f'{root} looks like several dataset types ({", ".join(found)}); '
        'pass --type'
    )


def check_dataset(
    root: str,
    dataset_type: str | None = None,
    split: str | None = None,
    nproc: int = 1,
    progress: bool = True,
    ann_file: str | None = None,
    img_dir: str | None = None,
) -> Report:
    """Check a dataset folder and report every problem found.

    Args:
        root (str): The dataset folder.
        dataset_type (str, optional): ``'cityscapes'``, ``'coco'`` or
            ``'mpii'``; None detects it (:func:`detect_dataset_type`).
        split (str, optional): Check only this split (Cityscapes:
            ``train``/``val``/``test``; COCO: ``val2017`` or ``val``;
            MPII: ``train``/``val``). Defaults to all.
        nproc (int): Worker processes for decoding files. Defaults to 1.
        progress (bool): Show a progress bar (stderr). Defaults to True.
        ann_file (str, optional): COCO/MPII: the annotation json, relative
            to ``root`` unless absolute (default: searched).
        img_dir (str, optional): COCO/MPII: the image folder, relative to
            ``root`` unless absolute (default: from the layout).

    Returns:
        Report: The findings.

    Raises:
        FileNotFoundError: If ``root`` is not a folder.
        ValueError: If ``dataset_type`` is unknown or cannot be detected.
    """
    if not osp.isdir(root):
        raise FileNotFoundError(
            f'dataset folder {root} does not exist or is not a folder'
        )
    if dataset_type is None:
        dataset_type = detect_dataset_type(root)
    if dataset_type not in DATASET_TYPES:
        raise ValueError(
            f'unknown dataset type {dataset_type!r}; valid types are '
            f'{", ".join(DATASET_TYPES)}'
        )
    if dataset_type == 'cityscapes':
        if ann_file or img_dir:
            raise ValueError(
                'ann_file/img_dir apply to COCO and MPII only; Cityscapes '
                'uses the leftImg8bit/ and gtFine/ layout'
            )
        return check_cityscapes(root, split, nproc, progress)
    check = check_coco if dataset_type == 'coco' else check_mpii
    return check(root, split, nproc, progress, ann_file, img_dir)
