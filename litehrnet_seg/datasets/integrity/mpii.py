"""Check an MPII folder: json entries (mmpose / HRNet format) and images.

Layouts understood (``find_mpii_files``)::

    root/annotations/mpii_{split}.json + root/images/*.jpg
    root/*.json (lists of MPII entries) + root/*.jpg

Each entry is ``{image, center: [x, y], scale, joints: 16 x [x, y],
joints_vis: 16 flags}``. The per-entry check :func:`check_mpii_entry` is
shared with :class:`~litehrnet_seg.datasets.MpiiDataset`.
"""

from __future__ import annotations

import glob
import os.path as osp
from dataclasses import dataclass

from .common import (
    bad_number_indices,
    check_annotated_folder,
    is_number,
    read_image,
    shape_of,
)
from .report import Issue, Report

__all__ = [
    'MpiiImage',
    'check_mpii',
    'check_mpii_entries',
    'check_mpii_entry',
    'check_mpii_image',
    'find_mpii_files',
]

NUM_JOINTS = 16
REQUIRED_FIELDS = ('image', 'center', 'scale', 'joints', 'joints_vis')


@dataclass
class MpiiImage:
    """An image file named by MPII entries.

    Args:
        path (str): The image file.
        ann_file (str): The json that names it.
        entries (list[int]): The indices of the entries naming it.
    """

    path: str
    ann_file: str
    entries: list[int]


def check_mpii_entry(
    entry: dict, idx: int, ann_file: str, num_joints: int = NUM_JOINTS
) -> list[Issue]:
    """Check one MPII entry.

    Checked: required fields; ``center`` is 2 finite numbers; ``scale`` a
    positive number; ``joints`` is ``num_joints x 2`` finite numbers;
    ``joints_vis`` is ``num_joints`` finite numbers >= 0.

    Args:
        entry (dict): The entry.
        idx (int): Its index in the file.
        ann_file (str): The json file, for the messages.
        num_joints (int): Joints per person. Defaults to 16.

    Returns:
        list[Issue]: The findings; each message names ``ann_file``, the
        entry (index and image) and the field.
    """
    image = entry.get('image', '?') if isinstance(entry, dict) else '?'
    where = f'{ann_file}: entry {idx} ({image})'

    def issue(kind: str, field: str, message: str) -> Issue:
        return Issue(kind, ann_file, message, f'entry {idx}: {field}')

    if not isinstance(entry, dict):
        return [issue('bad_value', '', f'{where} is not a dict')]
    missing = [f for f in REQUIRED_FIELDS if f not in entry]
    if missing:
        return [
            issue('missing_field', f, f'{where} has no "{f}" field')
            for f in missing
        ]
    issues = []
    if not isinstance(entry['image'], str) or not entry['image']:
        issues.append(
            issue(
                'bad_value',
                'image',
                f'{where}: field "image" must be a file name, got '
                f'{entry["image"]!r}',
            )
        )
    center = entry['center']
    if shape_of(center) != (2,):
        issues.append(
            issue(
                'bad_value',
                'center',
                f'{where}: field "center" must be [x, y], got {center!r}',
            )
        )
    elif bad_number_indices(center):
        issues.append(
            issue(
                'bad_value',
                'center',
                f'{where}: field "center" holds non-numeric or NaN/inf '
                f'values: {center!r}',
            )
        )
    scale = entry['scale']
    if not is_number(scale) or scale <= 0:
        issues.append(
            issue(
                'bad_value',
                'scale',
                f'{where}: field "scale" must be a positive number, got '
                f'{scale!r}',
            )
        )
    joints = entry['joints']
    shape = shape_of(joints)
    if shape != (num_joints, 2):
        issues.append(
            issue(
                'bad_keypoints',
                'joints',
                f'{where}: field "joints" has shape '
                f'{shape if shape is not None else "(ragged)"}, expected '
                f'({num_joints}, 2)',
            )
        )
    else:
        flat = [v for joint in joints for v in joint]
        bad = bad_number_indices(flat)
        if bad:
            issues.append(
                issue(
                    'bad_value',
                    'joints',
                    f'{where}: field "joints" holds non-numeric or NaN/inf '
                    f'values at joints {sorted({i // 2 for i in bad})} (e.g. '
                    f'{flat[bad[0]]!r})',
                )
            )
    vis = entry['joints_vis']
    vis_shape = shape_of(vis)
    if vis_shape != (num_joints,):
        issues.append(
            issue(
                'bad_keypoints',
                'joints_vis',
                f'{where}: field "joints_vis" has shape '
                f'{vis_shape if vis_shape is not None else "(ragged)"}, '
                f'expected ({num_joints},)',
            )
        )
    else:
        bad = bad_number_indices(vis)
        bad += [i for i, v in enumerate(vis) if i not in bad and v < 0]
        if bad:
            issues.append(
                issue(
                    'bad_value',
                    'joints_vis',
                    f'{where}: field "joints_vis" holds values other than '
                    f'numbers >= 0 at joints {sorted(bad)} (e.g. '
                    f'{vis[bad[0]]!r})',
                )
            )
    return issues


def check_mpii_entries(
    content: object, ann_file: str, img_dir: str
) -> tuple[list[Issue], list[MpiiImage]]:
    """Check the entries of a loaded MPII json.

    Args:
        content (object): The parsed json.
        ann_file (str): Its path, for the messages.
        img_dir (str): The folder ``image`` is relative to.

    Returns:
        tuple: The findings, and the image files to check on disk.
    """
    if not isinstance(content, list):
        return [
            Issue(
                'unreadable_annotation',
                ann_file,
                f'{ann_file} is not an MPII annotation file (expected a '
                'json list of {image, center, scale, joints, joints_vis} '
                'entries)',
            )
        ], []
    issues = []
    images: dict[str, MpiiImage] = {}
    for idx, entry in enumerate(content):
        issues.extend(check_mpii_entry(entry, idx, ann_file))
        name = entry.get('image') if isinstance(entry, dict) else None
        if isinstance(name, str) and name:
            path = osp.join(img_dir, name)
            images.setdefault(path, MpiiImage(path, ann_file, []))
            images[path].entries.append(idx)
    return issues, list(images.values())


def check_mpii_image(image: MpiiImage) -> list[Issue]:
    """Check that an image named by MPII entries exists and decodes.

    Args:
        image (MpiiImage): The file and the entries naming it.

    Returns:
        list[Issue]: The findings.
    """
    if not osp.isfile(image.path):
        entries = ', '.join(map(str, image.entries[:5]))
        if len(image.entries) > 5:
            entries += ', ...'
        return [
            Issue(
                'missing_image',
                image.path,
                f'image {image.path} does not exist (named by entries '
                f'[{entries}] of {image.ann_file})',
                field='image',
            )
        ]
    _, issue = read_image(image.path, 'image')
    return [issue] if issue is not None else []


def _looks_like_mpii(path: str) -> bool:
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return head.lstrip().startswith('[') and '"joints"' in head


def find_mpii_files(
    root: str,
    split: str | None = None,
    ann_file: str | None = None,
    img_dir: str | None = None,
) -> list[tuple[str, str]]:
    """Find the annotation files of an MPII folder and their image folder.

    Args:
        root (str): The MPII folder.
        split (str, optional): e.g. ``'train'``, ``'val'``: only
            ``annotations/mpii_{split}.json``.
        ann_file (str, optional): Use this json (relative to ``root``
            unless absolute) instead of searching.
        img_dir (str, optional): The image folder (relative to ``root``
            unless absolute); default ``root/images`` when it exists, else
            ``root``.

    Returns:
        list[tuple[str, str]]: ``(annotation file, image folder)`` pairs.
    """
    if img_dir:
        folder = osp.join(root, img_dir)
    elif osp.isdir(osp.join(root, 'images')):
        folder = osp.join(root, 'images')
    else:
        folder = root
    if ann_file:
        return [(osp.join(root, ann_file), folder)]
    pattern = f'mpii_{split}.json' if split else 'mpii_*.json'
    files = sorted(glob.glob(osp.join(root, 'annotations', pattern)))
    files = [f for f in files if _looks_like_mpii(f)]
    if not files:
        files = [
            f
            for f in sorted(glob.glob(osp.join(root, '*.json')))
            if _looks_like_mpii(f)
        ]
    return [(f, folder) for f in files]


def check_mpii(
    root: str,
    split: str | None = None,
    nproc: int = 1,
    progress: bool = True,
    ann_file: str | None = None,
    img_dir: str | None = None,
) -> Report:
    """Check an MPII folder.

    Args:
        root (str): The MPII folder.
        split (str, optional): See :func:`find_mpii_files`.
        nproc (int): Worker processes for the images. Defaults to 1.
        progress (bool): Show a progress bar. Defaults to True.
        ann_file (str, optional): See :func:`find_mpii_files`.
        img_dir (str, optional): See :func:`find_mpii_files`.

    Returns:
        Report: The findings.
    """
    report = Report('mpii', root, split)
    pairs = find_mpii_files(root, split, ann_file, img_dir)
    where = f'mpii_{split or "*"}.json'
    return check_annotated_folder(
        report,
        pairs,
        'MPII',
        osp.join(root, 'annotations', where),
        check_mpii_entries,
        check_mpii_image,
        nproc,
        progress,
    )
