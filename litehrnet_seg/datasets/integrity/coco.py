"""Check a COCO person-keypoints folder: json records and image files.

Layouts understood (``find_coco_files``)::

    root/annotations/person_keypoints_{split}.json + root/{split}/*.jpg
    root/*.json (COCO dicts with "images") + root/*.jpg

The per-annotation check :func:`check_coco_annotation` is shared with
:class:`~litehrnet_seg.datasets.CocoDataset`, so that the tool and the
training data loader agree on what a bad annotation is.
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
)
from .report import Issue, Report

__all__ = [
    'CocoImage',
    'check_coco',
    'check_coco_annotation',
    'check_coco_image',
    'check_coco_json',
    'find_coco_files',
]

# Person keypoints when a category lists none.
DEFAULT_NUM_KEYPOINTS = 17
VISIBILITY_FLAGS = (0, 1, 2)
# How many offending indices a message lists.
MAX_LISTED = 5


@dataclass
class CocoImage:
    """One image record of a COCO json, to check against its file.

    Args:
        path (str): The image file (image folder + ``file_name``).
        ann_file (str): The json that lists it.
        image_id (int | str): Its ``id``.
        width (int, optional): Its recorded ``width``.
        height (int, optional): Its recorded ``height``.
    """

    path: str
    ann_file: str
    image_id: int | str
    width: int | None = None
    height: int | None = None


def _listed(indices: list[int]) -> str:
    shown = ', '.join(map(str, indices[:MAX_LISTED]))
    if len(indices) > MAX_LISTED:
        shown += f', ... ({len(indices)} in all)'
    return f'[{shown}]'


def check_coco_annotation(
    ann: dict,
    image_ids: set | dict,
    num_keypoints: int,
    ann_file: str,
) -> list[Issue]:
    """Check one COCO keypoint annotation.

    Checked: the ``id`` field; ``image_id`` names a record of "images";
    ``keypoints`` holds ``3 * num_keypoints`` finite numbers with
    visibility flags 0, 1 or 2; ``bbox`` is 4 finite numbers
    ``[x, y, w, h]`` with ``w, h >= 0``.

    Args:
        ann (dict): The annotation record.
        image_ids (set | dict): The ids of the "images" records.
        num_keypoints (int): Keypoints per instance (17 for COCO person).
        ann_file (str): The json file, for the messages.

    Returns:
        list[Issue]: The findings; each message names ``ann_file``, the
        annotation id and the field.
    """
    if not isinstance(ann, dict):
        return [
            Issue(
                'bad_value',
                ann_file,
                f'{ann_file}: an entry of "annotations" is not a json '
                f'object: {ann!r}',
                field='annotations',
            )
        ]
    ann_id = ann.get('id', '?')
    where = f'{ann_file}: annotation id {ann_id}'

    def issue(kind: str, field: str, message: str) -> Issue:
        return Issue(kind, ann_file, message, f'annotation {ann_id}: {field}')

    if 'id' not in ann:
        return [issue('missing_field', 'id', f'{where} has no "id" field')]
    issues = []
    try:
        known_image = ann.get('image_id') in image_ids
    except TypeError:  # unhashable, e.g. a list
        known_image = False
    if not known_image:
        issues.append(
            issue(
                'missing_image',
                'image_id',
                f'{where}: field "image_id" ({ann.get("image_id")!r}) '
                'names no image in "images"',
            )
        )
    kpts = ann.get('keypoints')
    expected = 3 * num_keypoints
    if kpts is None:
        issues.append(
            issue(
                'missing_field',
                'keypoints',
                f'{where} has no "keypoints" field; a COCO person-keypoints '
                'file (person_keypoints_*.json) is needed, not an instances '
                'file',
            )
        )
    elif not isinstance(kpts, list | tuple) or len(kpts) != expected:
        n = len(kpts) if isinstance(kpts, list | tuple) else type(kpts)
        issues.append(
            issue(
                'bad_keypoints',
                'keypoints',
                f'{where}: field "keypoints" has {n} values, expected '
                f'3 * {num_keypoints} = {expected} (x, y, v per keypoint)',
            )
        )
    else:
        bad = bad_number_indices(kpts)
        if bad:
            issues.append(
                issue(
                    'bad_value',
                    'keypoints',
                    f'{where}: field "keypoints" holds non-numeric or '
                    f'NaN/inf values at indices {_listed(bad)} (e.g. '
                    f'{kpts[bad[0]]!r}); expected numbers',
                )
            )
        else:
            flags = range(2, expected, 3)
            bad = [i for i in flags if kpts[i] not in VISIBILITY_FLAGS]
            if bad:
                issues.append(
                    issue(
                        'bad_value',
                        'keypoints',
                        f'{where}: field "keypoints" holds visibility '
                        f'flags other than 0, 1, 2 at indices {_listed(bad)}'
                        f' (e.g. {kpts[bad[0]]!r})',
                    )
                )
    bbox = ann.get('bbox')
    if (
        not isinstance(bbox, list | tuple)
        or len(bbox) != 4
        or bad_number_indices(bbox)
    ):
        issues.append(
            issue(
                'bad_bbox',
                'bbox',
                f'{where}: field "bbox" must be [x, y, w, h] (4 finite '
                f'numbers), got {bbox!r}',
            )
        )
    elif bbox[2] < 0 or bbox[3] < 0:
        issues.append(
            issue(
                'bad_bbox',
                'bbox',
                f'{where}: field "bbox" {bbox!r} has a negative width or '
                'height',
            )
        )
    return issues


def check_coco_image(image: CocoImage) -> list[Issue]:
    """Check that an image record's file exists, decodes and has its size.

    Args:
        image (CocoImage): The record and its file.

    Returns:
        list[Issue]: The findings.
    """
    where = f'{image.ann_file}: image id {image.image_id}'
    if not osp.isfile(image.path):
        return [
            Issue(
                'missing_image',
                image.path,
                f'image {image.path} does not exist (listed in {where})',
                field=f'image {image.image_id}: file_name',
            )
        ]
    array, issue = read_image(image.path, 'image')
    if issue is not None:
        return [issue]
    h, w = array.shape[:2]
    if (image.height, image.width) != (h, w):
        return [
            Issue(
                'size_mismatch',
                image.path,
                f'image {image.path} is {w}x{h} (WxH) but {where} records '
                f'width={image.width}, height={image.height}',
                field=f'image {image.image_id}: width/height',
            )
        ]
    return []


def check_coco_json(
    content: object, ann_file: str, img_dir: str
) -> tuple[list[Issue], list[CocoImage]]:
    """Check the records of a loaded COCO json.

    Args:
        content (object): The parsed json.
        ann_file (str): Its path, for the messages.
        img_dir (str): The folder ``file_name`` is relative to.

    Returns:
        tuple: The findings, and the image records to check on disk.
    """
    if not isinstance(content, dict) or not isinstance(
        content.get('images'), list
    ):
        return [
            Issue(
                'unreadable_annotation',
                ann_file,
                f'{ann_file} is not a COCO annotation file (expected a json '
                'object with an "images" list)',
            )
        ], []
    issues: list[Issue] = []
    images: list[CocoImage] = []
    ids: set = set()
    for i, img in enumerate(content['images']):
        img_id = img.get('id', '?') if isinstance(img, dict) else '?'
        where = f'{ann_file}: images[{i}] (id {img_id})'
        if not isinstance(img, dict):
            issues.append(
                Issue('bad_value', ann_file, f'{where} is not a json object')
            )
            continue
        missing = [
            f for f in ('id', 'file_name', 'width', 'height') if f not in img
        ]
        for field in missing:
            issues.append(
                Issue(
                    'missing_field',
                    ann_file,
                    f'{where} has no "{field}" field',
                    field=f'images[{i}].{field}',
                )
            )
        if 'id' in img:
            if img['id'] in ids:
                issues.append(
                    Issue(
                        'duplicate_id',
                        ann_file,
                        f'{where}: image id {img["id"]} is used twice',
                        field=f'images[{i}].id',
                    )
                )
            ids.add(img['id'])
        size = [img.get('width'), img.get('height')]
        bad_size = [v for v in size if v is not None and not is_number(v)]
        if bad_size or any(v is not None and v <= 0 for v in size):
            issues.append(
                Issue(
                    'bad_value',
                    ann_file,
                    f'{where}: fields "width"/"height" must be positive '
                    f'numbers, got {size}',
                    field=f'images[{i}].width/height',
                )
            )
            size = [None, None]
        if 'file_name' in img:
            images.append(
                CocoImage(
                    path=osp.join(img_dir, img['file_name']),
                    ann_file=ann_file,
                    image_id=img_id,
                    width=size[0],
                    height=size[1],
                )
            )
    if not isinstance(content.get('annotations'), list):
        issues.append(
            Issue(
                'missing_field',
                ann_file,
                f'{ann_file} has no "annotations" list (a COCO '
                'person-keypoints file is needed)',
                field='annotations',
            )
        )
        return issues, images
    num_kpts = {}
    for cat in content.get('categories', []):
        if isinstance(cat, dict) and 'id' in cat:
            kpts = cat.get('keypoints')
            num_kpts[cat['id']] = (
                len(kpts) if isinstance(kpts, list) else DEFAULT_NUM_KEYPOINTS
            )
    ann_ids: set = set()
    for ann in content['annotations']:
        k = DEFAULT_NUM_KEYPOINTS
        if isinstance(ann, dict):
            k = num_kpts.get(ann.get('category_id', 1), k)
            if 'id' in ann and ann['id'] in ann_ids:
                issues.append(
                    Issue(
                        'duplicate_id',
                        ann_file,
                        f'{ann_file}: annotation id {ann["id"]} is used twice',
                        field=f'annotation {ann["id"]}: id',
                    )
                )
            ann_ids.add(ann.get('id'))
        issues.extend(check_coco_annotation(ann, ids, k, ann_file))
    return issues, images


def _looks_like_coco(path: str) -> bool:
    """Whether a json file starts like a COCO annotation file."""
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return head.lstrip().startswith('{') and '"images"' in head


def find_coco_files(
    root: str,
    split: str | None = None,
    ann_file: str | None = None,
    img_dir: str | None = None,
) -> list[tuple[str, str]]:
    """Find the annotation files of a COCO folder and their image folders.

    Args:
        root (str): The COCO folder.
        split (str, optional): e.g. ``'val2017'`` (or ``'val'``): only
            ``annotations/person_keypoints_{split}[2017].json``.
        ann_file (str, optional): Use this json (relative to ``root``
            unless absolute) instead of searching.
        img_dir (str, optional): The image folder (relative to ``root``
            unless absolute); default: ``root/<split>`` for
            ``person_keypoints_<split>.json`` when it exists, else ``root``.

    Returns:
        list[tuple[str, str]]: ``(annotation file, image folder)`` pairs.
    """
    if ann_file:
        files = [osp.join(root, ann_file)]
    else:
        pattern = f'person_keypoints_{split or ""}*.json'
        files = sorted(glob.glob(osp.join(root, 'annotations', pattern)))
        if split:
            files = [
                f
                for f in files
                if osp.basename(f)
                in (
                    f'person_keypoints_{split}.json',
                    f'person_keypoints_{split}2017.json',
                )
            ]
        if not files:
            files = [
                f
                for f in sorted(glob.glob(osp.join(root, '*.json')))
                if _looks_like_coco(f)
            ]
    pairs = []
    for f in files:
        if img_dir:
            pairs.append((f, osp.join(root, img_dir)))
            continue
        stem = osp.splitext(osp.basename(f))[0]
        sub = stem[len('person_keypoints_') :]
        if stem.startswith('person_keypoints_') and osp.isdir(
            osp.join(root, sub)
        ):
            pairs.append((f, osp.join(root, sub)))
        else:
            pairs.append((f, root))
    return pairs


def check_coco(
    root: str,
    split: str | None = None,
    nproc: int = 1,
    progress: bool = True,
    ann_file: str | None = None,
    img_dir: str | None = None,
) -> Report:
    """Check a COCO person-keypoints folder.

    Args:
        root (str): The COCO folder.
        split (str, optional): See :func:`find_coco_files`.
        nproc (int): Worker processes for the images. Defaults to 1.
        progress (bool): Show a progress bar. Defaults to True.
        ann_file (str, optional): See :func:`find_coco_files`.
        img_dir (str, optional): See :func:`find_coco_files`.

    Returns:
        Report: The findings.
    """
    report = Report('coco', root, split)
    pairs = find_coco_files(root, split, ann_file, img_dir)
    where = f'person_keypoints_{split or "*"}.json'
    return check_annotated_folder(
        report,
        pairs,
        'COCO',
        osp.join(root, 'annotations', where),
        check_coco_json,
        check_coco_image,
        nproc,
        progress,
    )
