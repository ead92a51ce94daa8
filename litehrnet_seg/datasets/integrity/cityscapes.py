"""Check a Cityscapes folder: pairs, decodability, label ids, sizes.

Expected layout (``gt_dir`` defaults to ``gtFine``)::

    root/leftImg8bit/{split}/{city}/<frame>_leftImg8bit.png
    root/gtFine/{split}/{city}/<frame>_gtFine_labelTrainIds.png
    root/gtFine/{split}/{city}/<frame>_gtFine_labelIds.png
    root/gtFine/{split}/{city}/<frame>_gtFine_instanceIds.png
    root/gtFine/{split}/{city}/<frame>_gtFine_polygons.json

Every frame is checked by :func:`check_frame` (one work item per frame).
Files of other names (``*_color.png``, ``*_reference.png``, ...) are
ignored.
"""

from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..transforms.check_seg_sample import CheckSegSample
from .common import load_json_file, read_image, run_checks
from .report import ERROR, WARNING, Issue, Report

__all__ = [
    'CityscapesFrame',
    'check_cityscapes',
    'check_frame',
    'find_frames',
    'invalid_values',
]

IMG_DIR = 'leftImg8bit'
IMG_SUFFIX = '_leftImg8bit.png'
# Label kinds that are checked, by the suffix after ``_<gt_dir>``.
LABEL_KINDS = ('labelTrainIds', 'labelIds', 'instanceIds', 'polygons')
# The kinds from which a training label can be made (one is required).
SOURCE_KINDS = ('labelTrainIds', 'labelIds', 'polygons')
NUM_TRAIN_IDS = 19
IGNORE_INDEX = 255
# How many offending values a message lists.
MAX_LISTED_VALUES = 10
CONVERTER = 'python tools/dataset_converters/cityscapes.py <root>'


@dataclass
class CityscapesFrame:
    """The files of one Cityscapes frame.

    Args:
        name (str): ``{split}/{city}/<frame>``.
        image (str, optional): The ``*_leftImg8bit.png``, if present.
        expected_image (str): Where the image should be.
        labels (dict): Label kind (see :data:`LABEL_KINDS`) -> path.
        expected_label (str): Where the ``*_labelTrainIds.png`` should be.
        gt_dir_exists (bool): Whether the split's label folder exists (if
            not, one issue is reported for the folder, not per frame).
    """

    name: str
    expected_image: str
    expected_label: str
    image: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    gt_dir_exists: bool = True


@lru_cache(maxsize=1)
def _valid_label_ids() -> frozenset[int]:
    """Cityscapes label ids (``cityscapesscripts.helpers.labels``)."""
    from cityscapesscripts.helpers.labels import labels

    return frozenset(label.id for label in labels if label.id >= 0)


@lru_cache(maxsize=1)
def _label_names() -> frozenset[str]:
    from cityscapesscripts.helpers.labels import name2label

    return frozenset(name2label)


def invalid_values(
    label: np.ndarray, valid: frozenset[int] | np.ndarray
) -> list[tuple[int, int]]:
    """Values of ``label`` outside ``valid``, with their pixel counts.

    Args:
        label (np.ndarray): An integer label map.
        valid (frozenset[int] | np.ndarray): The allowed values.

    Returns:
        list[tuple[int, int]]: ``(value, pixel count)`` of each invalid
        value, in increasing value order.
    """
    values, counts = CheckSegSample._value_counts(label)
    bad = ~np.isin(values, np.fromiter(valid, dtype=np.int64))
    return list(zip(values[bad].tolist(), counts[bad].tolist(), strict=True))


def _list_values(bad: list[tuple[int, int]]) -> str:
    listed = ', '.join(f'{v} ({c} px)' for v, c in bad[:MAX_LISTED_VALUES])
    if len(bad) > MAX_LISTED_VALUES:
        listed += f', ... ({len(bad)} values in all)'
    return listed


def _check_label_png(
    kind: str, path: str, image_path: str | None, img_hw: tuple | None
) -> list[Issue]:
    """Decode one label PNG; check its shape, size and values."""
    label, issue = read_image(path, 'label')
    if issue is not None:
        return [issue]
    if label.ndim != 2:
        return [
            Issue(
                'bad_label_format',
                path,
                f'label {path} has shape {label.shape}, expected a '
                f'single-channel (H, W) map of {kind}',
            )
        ]
    issues = []
    if img_hw is not None and tuple(label.shape) != img_hw:
        issues.append(
            Issue(
                'size_mismatch',
                path,
                f'label {path} is {label.shape[0]}x{label.shape[1]} but '
                f'image {image_path} is {img_hw[0]}x{img_hw[1]} (HxW); '
                'they must have the same size',
            )
        )
    if kind == 'labelTrainIds':
        valid = frozenset(range(NUM_TRAIN_IDS)) | {IGNORE_INDEX}
        expected = (
            f'train ids 0..{NUM_TRAIN_IDS - 1} and the ignore index '
            f'{IGNORE_INDEX}'
        )
        hint = (
            f' (raw label ids? Re-generate it with `{CONVERTER}`)'
            if label.max() < 34
            else ''
        )
    elif kind == 'labelIds':
        valid = _valid_label_ids()
        expected = (
            'the label ids of cityscapesscripts.helpers.labels '
            f'({min(valid)}..{max(valid)})'
        )
        hint = ''
    else:  # instanceIds: label id, or label id * 1000 + instance number
        ids = _valid_label_ids()
        values = np.unique(label).astype(np.int64)
        label_ids = np.where(values < 1000, values, values // 1000)
        bad_values = values[~np.isin(label_ids, list(ids))]
        if len(bad_values):
            listed = ', '.join(map(str, bad_values[:MAX_LISTED_VALUES]))
            issues.append(
                Issue(
                    'invalid_label_id',
                    path,
                    f'instance map {path} holds values {listed} whose label '
                    'id (value, or value // 1000) is not a cityscapesscripts '
                    'label id',
                )
            )
        return issues
    bad = invalid_values(label, valid)
    if bad:
        issues.append(
            Issue(
                'invalid_label_id',
                path,
                f'label {path} holds invalid values {_list_values(bad)}; '
                f'valid are {expected}{hint}',
            )
        )
    return issues


def _check_polygons(
    path: str, image_path: str | None, img_hw: tuple | None
) -> list[Issue]:
    """Check a ``*_polygons.json``: size fields and object labels."""
    content, issue = load_json_file(path, 'polygon file')
    if issue is not None:
        return [Issue('unreadable_label', path, issue.message)]
    if not isinstance(content, dict):
        return [
            Issue(
                'unreadable_label',
                path,
                f'polygon file {path} must hold a json object with '
                '"imgHeight", "imgWidth" and "objects"',
            )
        ]
    issues = []
    for key in ('imgHeight', 'imgWidth', 'objects'):
        if key not in content:
            issues.append(
                Issue(
                    'missing_field',
                    path,
                    f'polygon file {path} has no "{key}" field',
                    field=key,
                )
            )
    if issues:
        return issues
    hw = (content['imgHeight'], content['imgWidth'])
    if img_hw is not None and hw != img_hw:
        issues.append(
            Issue(
                'size_mismatch',
                path,
                f'polygon file {path}: fields "imgHeight"/"imgWidth" are '
                f'{hw[0]}x{hw[1]} but image {image_path} is '
                f'{img_hw[0]}x{img_hw[1]} (HxW)',
                field='imgHeight/imgWidth',
            )
        )
    names = _label_names()
    for i, obj in enumerate(content['objects']):
        name = obj.get('label') if isinstance(obj, dict) else None
        # json2labelImg accepts '<label>group' for grouped instances.
        if name is not None and name not in names and name.endswith('group'):
            name = name[: -len('group')]
        if name not in names:
            issues.append(
                Issue(
                    'invalid_label_id',
                    path,
                    f'polygon file {path}: objects[{i}] has label '
                    f'{obj.get("label") if isinstance(obj, dict) else obj!r}'
                    ', which is not a cityscapesscripts label name',
                    field=f'objects[{i}].label',
                )
            )
    return issues


def check_frame(frame: CityscapesFrame) -> list[Issue]:
    """Check one frame: pairs, decoding, sizes and label values.

    Args:
        frame (CityscapesFrame): The frame's files.

    Returns:
        list[Issue]: The findings (empty when the frame is clean).
    """
    issues = []
    if frame.image is None:
        files = [frame.labels[k] for k in LABEL_KINDS if k in frame.labels]
        others = f' (nor {", ".join(files[1:])})' if len(files) > 1 else ''
        issues.append(
            Issue(
                'missing_image',
                files[0],
                f'label {files[0]} has no image{others}; expected '
                f'{frame.expected_image}',
            )
        )
        img_hw = None
    else:
        image, issue = read_image(frame.image, 'image')
        if issue is not None:
            issues.append(issue)
            img_hw = None
        else:
            img_hw = tuple(image.shape[:2])
        sources = [k for k in SOURCE_KINDS if k in frame.labels]
        if not sources and frame.gt_dir_exists:
            issues.append(
                Issue(
                    'missing_label',
                    frame.image,
                    f'image {frame.image} has no label; expected '
                    f'{frame.expected_label} (or the *_labelIds.png / '
                    '*_polygons.json to make it from)',
                )
            )
        elif sources and 'labelTrainIds' not in frame.labels:
            issues.append(
                Issue(
                    'missing_train_ids',
                    frame.image,
                    f'image {frame.image} has no {frame.expected_label} '
                    '(needed for training); generate it from the '
                    f'{" / ".join(sources)} with `{CONVERTER}`',
                    severity=WARNING,
                )
            )
    for kind in LABEL_KINDS:
        path = frame.labels.get(kind)
        if path is None:
            continue
        if kind == 'polygons':
            issues.extend(_check_polygons(path, frame.image, img_hw))
        else:
            issues.extend(_check_label_png(kind, path, frame.image, img_hw))
    return issues


def _walk(folder: str, suffixes: dict[str, str]) -> dict[str, dict[str, str]]:
    """Map ``<rel dir>/<frame>`` -> {kind: path} for matching files."""
    found: dict[str, dict[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        rel = osp.relpath(dirpath, folder)
        for filename in sorted(filenames):
            for kind, suffix in suffixes.items():
                if filename.endswith(suffix) and len(filename) > len(suffix):
                    name = osp.normpath(
                        osp.join(rel, filename[: -len(suffix)])
                    )
                    found.setdefault(name, {})[kind] = osp.join(
                        dirpath, filename
                    )
                    break
    return found


def find_frames(
    root: str, split: str | None = None, gt_dir: str = 'gtFine'
) -> tuple[list[CityscapesFrame], list[Issue]]:
    """List the frames of ``root`` (one split, or all of them).

    Args:
        root (str): The Cityscapes root.
        split (str, optional): ``'train'``, ``'val'``, ``'test'``, ...;
            None: every split folder under ``leftImg8bit`` and ``gt_dir``.
        gt_dir (str): The label folder. Defaults to ``'gtFine'``.

    Returns:
        tuple: The frames (sorted by name) and folder-level issues (no
        image folder, no images, no label folder).
    """
    img_root = osp.join(root, IMG_DIR)
    gt_root = osp.join(root, gt_dir)
    issues = []
    if split is not None:
        splits = [split]
    else:
        splits = sorted(
            {
                d
                for base in (img_root, gt_root)
                if osp.isdir(base)
                for d in os.listdir(base)
                if osp.isdir(osp.join(base, d))
            }
        )
    frames = []
    gt_suffixes = {k: f'_{gt_dir}_{k}.png' for k in LABEL_KINDS}
    gt_suffixes['polygons'] = f'_{gt_dir}_polygons.json'
    for sp in splits:
        img_dir = osp.join(img_root, sp)
        split_gt = osp.join(gt_root, sp)
        if not osp.isdir(img_dir) and not osp.isdir(split_gt):
            issues.append(
                Issue(
                    'no_samples',
                    img_dir,
                    f'Cityscapes image folder {img_dir} does not exist '
                    f'(split {sp!r}); expected <city>/<frame>{IMG_SUFFIX} '
                    'under it',
                )
            )
            continue
        images = _walk(img_dir, {'image': IMG_SUFFIX})
        labels = _walk(split_gt, gt_suffixes)
        gt_exists = osp.isdir(split_gt)
        if images and not gt_exists:
            issues.append(
                Issue(
                    'missing_label',
                    split_gt,
                    f'label folder {split_gt} does not exist: the '
                    f'{len(images)} images of split {sp!r} have no labels',
                    severity=WARNING if sp == 'test' else ERROR,
                )
            )
        if not images:
            issues.append(
                Issue(
                    'no_samples',
                    img_dir,
                    f'no Cityscapes images (*{IMG_SUFFIX}) found under '
                    f'{img_dir}',
                )
            )
        for name in sorted(set(images) | set(labels)):
            frames.append(
                CityscapesFrame(
                    name=f'{sp}/{name}',
                    image=images.get(name, {}).get('image'),
                    expected_image=osp.join(img_dir, name + IMG_SUFFIX),
                    labels=labels.get(name, {}),
                    expected_label=osp.join(
                        split_gt, name + gt_suffixes['labelTrainIds']
                    ),
                    gt_dir_exists=gt_exists,
                )
            )
    return frames, issues


def check_cityscapes(
    root: str,
    split: str | None = None,
    nproc: int = 1,
    progress: bool = True,
    gt_dir: str = 'gtFine',
) -> Report:
    """Check a Cityscapes folder.

    Args:
        root (str): The Cityscapes root (holding ``leftImg8bit`` and
            ``gt_dir``).
        split (str, optional): Check only this split. Defaults to all.
        nproc (int): Worker processes. Defaults to 1.
        progress (bool): Show a progress bar. Defaults to True.
        gt_dir (str): The label folder. Defaults to ``'gtFine'``.

    Returns:
        Report: The findings.
    """
    report = Report('cityscapes', root, split)
    frames, issues = find_frames(root, split, gt_dir)
    report.add(issues)
    report.add(
        run_checks(check_frame, frames, nproc, 'cityscapes frames', progress)
    )
    report.num_checked = sum(
        (f.image is not None) + len(f.labels) for f in frames
    )
    return report
