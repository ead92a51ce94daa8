"""Pure checks of training data; each failure is a :class:`DataError`.

The loading transforms (``LoadImageFromFileChecked``,
``LoadAnnotationsChecked``, ``CheckSegSample``), the pose datasets and
``tools/misc/check_dataset.py`` all call these functions, so that training
and the offline check agree on what bad data is. Every message names the
offending file (and, for annotations, the record and field).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mmcv
import numpy as np
from mmengine import fileio

__all__ = [
    'DataError',
    'check_coco_annotation',
    'check_coco_image',
    'check_image_shape',
    'check_mpii_entry',
    'check_seg_label',
    'read_image',
]

# How many offending values or indices a message lists.
MAX_LISTED = 10
VISIBILITY_FLAGS = (0, 1, 2)
CONVERTER = 'python tools/dataset_converters/cityscapes.py data/cityscapes'


class DataError(ValueError):
    """Bad data (not a bug): the only error a skip policy may skip.

    Args:
        message (str): What is wrong; it names ``path`` (and the field).
        path (str): The offending file (for an annotation: the json).
        kind (str): A short category, e.g. ``'invalid_label_id'``,
            ``'missing_image'``; the offline checker counts them.
        field (str, optional): The offending field, e.g.
            ``'annotation 42: keypoints'``.
    """

    # Defaults let torch re-raise it from a dataloader worker with the
    # message alone.
    def __init__(
        self,
        message: str,
        path: str = '',
        kind: str = 'bad_data',
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.kind = kind
        self.field = field

    def __reduce__(self) -> tuple:
        # Keep the attributes across processes (dataloader workers).
        return type(self), (str(self), self.path, self.kind, self.field)


def read_image(
    path: str,
    what: str = 'image',
    flag: str = 'color',
    backend: str = 'cv2',
    backend_args: dict | None = None,
) -> np.ndarray:
    """Read and decode an image file as training does (mmcv).

    Args:
        path (str): The file.
        what (str): ``'image'`` or ``'label'``, for the message and kind.
        flag (str): ``mmcv.imfrombytes`` flag (``'color'``,
            ``'unchanged'``, ...). Defaults to ``'color'`` (BGR).
        backend (str): Decoding backend (``'cv2'``, ``'pillow'``, ...).
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        np.ndarray: The decoded pixels.

    Raises:
        DataError: ``missing_<what>`` if the file does not exist,
            ``unreadable_<what>`` if it is empty or cannot be decoded.
    """
    try:
        content = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError as err:
        raise DataError(
            f'{what} file {path} does not exist', path, f'missing_{what}'
        ) from err
    reason = 'the file is empty (0 bytes)'
    img = None
    if content:
        try:
            img = mmcv.imfrombytes(content, flag=flag, backend=backend)
            reason = 'the decoder returned nothing'
        except Exception as err:  # decoders raise many types on bad bytes
            reason = f'{type(err).__name__}: {str(err).strip()}'
    if img is None:
        raise DataError(
            f'Cannot decode {what} file {path}: it is empty, truncated, '
            f'corrupt or not an image ({reason}). Re-download or '
            're-generate it.',
            path,
            f'unreadable_{what}',
        )
    return img


def check_image_shape(
    img_hw: Sequence[int], expected_hw: Sequence[int], img_path: str
) -> None:
    """Check a decoded image against the size its annotation records.

    Args:
        img_hw (Sequence[int]): The decoded (H, W).
        expected_hw (Sequence[int]): The (H, W) the annotation records.
        img_path (str): The image, for the message.

    Raises:
        DataError: ``size_mismatch`` naming the image.
    """
    (h, w), (eh, ew) = img_hw[:2], expected_hw
    if (h, w) != (eh, ew):
        raise DataError(
            f'image {img_path} is {w}x{h} (WxH) but its annotation records '
            f'width={ew}, height={eh}',
            img_path,
            'size_mismatch',
            'width/height',
        )


def _value_counts(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``label`` and how many pixels hold each."""
    if label.dtype == np.uint8:
        # Linear time, no sort: much cheaper than np.unique.
        counts = np.bincount(label.ravel(), minlength=256)
        values = np.flatnonzero(counts)
        return values, counts[values]
    return np.unique(label, return_counts=True)


def check_seg_label(
    label: np.ndarray,
    img_hw: Sequence[int],
    num_classes: int,
    ignore_index: int,
    seg_path: str,
    img_path: str,
) -> None:
    """Check a loaded label map against its image and the train ids.

    Args:
        label (np.ndarray): The label map (after ``label_map`` /
            ``reduce_zero_label``).
        img_hw (Sequence[int]): The image's (H, W).
        num_classes (int): Valid train ids are ``0 .. num_classes - 1``.
        ignore_index (int): The label value of ignored pixels.
        seg_path (str): The label file, for the messages.
        img_path (str): The image file, for the messages.

    Raises:
        DataError: ``bad_label_format`` (not a single-channel map),
            ``size_mismatch`` or ``invalid_label_id`` (lists up to 10
            offending values with their pixel counts).
    """
    if label.ndim != 2:
        raise DataError(
            f'label {seg_path} has shape {label.shape}, expected a '
            'single-channel (H, W) map of train ids (a colour or instance '
            'map given by a wrong seg_map_suffix?)',
            seg_path,
            'bad_label_format',
        )
    h, w = img_hw[:2]
    if (h, w) != label.shape:
        raise DataError(
            f'label {seg_path} is {label.shape[0]}x{label.shape[1]} but '
            f'image {img_path} is {h}x{w} (HxW); they must have the same '
            'size',
            seg_path,
            'size_mismatch',
        )
    values, counts = _value_counts(label)
    bad = (values < 0) | (values >= num_classes)
    bad &= values != ignore_index
    if not bad.any():
        return
    pairs = list(zip(values[bad].tolist(), counts[bad].tolist(), strict=True))
    listed = ', '.join(f'{v} ({c} px)' for v, c in pairs[:MAX_LISTED])
    if len(pairs) > MAX_LISTED:
        listed += f', ... ({len(pairs)} values in all)'
    raise DataError(
        f'label {seg_path} (image {img_path}) holds invalid values {listed}'
        f'; valid are train ids 0..{num_classes - 1} and the ignore index '
        f'{ignore_index}. For Cityscapes, use the *_gtFine_labelTrainIds.png '
        f'maps made by `{CONVERTER}`, not the raw *_gtFine_labelIds.png.',
        seg_path,
        'invalid_label_id',
    )


def _is_number(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _bad_indices(values: Sequence[Any]) -> list[int]:
    return [i for i, v in enumerate(values) if not _is_number(v)]


def _listed(indices: list[int]) -> str:
    shown = ', '.join(map(str, indices[:MAX_LISTED]))
    more = (
        f', ... ({len(indices)} in all)' if len(indices) > MAX_LISTED else ''
    )
    return f'[{shown}{more}]'


def check_coco_image(img: Any, index: int, ann_file: str) -> None:
    """Check one record of a COCO json's ``"images"`` list.

    Args:
        img (Any): The record.
        index (int): Its index in ``"images"``.
        ann_file (str): The json, for the messages.

    Raises:
        DataError: ``missing_field`` or ``bad_value`` naming the json, the
            record and the field.
    """
    where = f'{ann_file}: images[{index}]'
    if not isinstance(img, dict):
        raise DataError(f'{where} is not a json object', ann_file, 'bad_value')
    for field in ('id', 'file_name', 'width', 'height'):
        if field not in img:
            raise DataError(
                f'{where} (id {img.get("id", "?")}) has no "{field}" field',
                ann_file,
                'missing_field',
                f'images[{index}].{field}',
            )
    size = [img['width'], img['height']]
    if not all(_is_number(v) and v > 0 for v in size):
        raise DataError(
            f'{where} (id {img["id"]}): fields "width"/"height" must be '
            f'positive numbers, got {size}',
            ann_file,
            'bad_value',
            f'images[{index}].width/height',
        )


def check_coco_annotation(
    ann: Any, image_ids: Any, num_keypoints: int, ann_file: str
) -> None:
    """Check one COCO keypoint annotation.

    Checked: the ``id`` field; ``image_id`` names a record of "images";
    ``keypoints`` holds ``3 * num_keypoints`` finite numbers with
    visibility flags 0, 1 or 2; ``bbox`` is 4 finite numbers
    ``[x, y, w, h]`` with ``w, h >= 0``.

    Args:
        ann (Any): The annotation record.
        image_ids (Any): The ids of the "images" records (a set or dict).
        num_keypoints (int): Keypoints per instance (17 for COCO person).
        ann_file (str): The json, for the messages.

    Raises:
        DataError: The first problem found; the message names
            ``ann_file``, the annotation id and the field.
    """
    if not isinstance(ann, dict):
        raise DataError(
            f'{ann_file}: an entry of "annotations" is not a json object: '
            f'{ann!r}',
            ann_file,
            'bad_value',
            'annotations',
        )
    ann_id = ann.get('id', '?')
    where = f'{ann_file}: annotation id {ann_id}'

    def error(kind: str, field: str, message: str) -> DataError:
        return DataError(
            message, ann_file, kind, f'annotation {ann_id}: {field}'
        )

    if 'id' not in ann:
        raise error('missing_field', 'id', f'{where} has no "id" field')
    try:
        known_image = ann.get('image_id') in image_ids
    except TypeError:  # unhashable, e.g. a list
        known_image = False
    if not known_image:
        raise error(
            'missing_image',
            'image_id',
            f'{where}: field "image_id" ({ann.get("image_id")!r}) names no '
            'image in "images"',
        )
    kpts = ann.get('keypoints')
    expected = 3 * num_keypoints
    if kpts is None:
        raise error(
            'missing_field',
            'keypoints',
            f'{where} has no "keypoints" field; a COCO person-keypoints file '
            '(person_keypoints_*.json) is needed, not an instances file',
        )
    if not isinstance(kpts, list) or len(kpts) != expected:
        n = len(kpts) if isinstance(kpts, list) else type(kpts).__name__
        raise error(
            'bad_keypoints',
            'keypoints',
            f'{where}: field "keypoints" has {n} values, expected '
            f'3 * {num_keypoints} = {expected} (x, y, v per keypoint)',
        )
    bad = _bad_indices(kpts)
    if bad:
        raise error(
            'bad_value',
            'keypoints',
            f'{where}: field "keypoints" holds non-numeric or NaN/inf values '
            f'at indices {_listed(bad)} (e.g. {kpts[bad[0]]!r}); expected '
            'numbers',
        )
    bad = [i for i in range(2, expected, 3) if kpts[i] not in VISIBILITY_FLAGS]
    if bad:
        raise error(
            'bad_value',
            'keypoints',
            f'{where}: field "keypoints" holds visibility flags other than '
            f'0, 1, 2 at indices {_listed(bad)} (e.g. {kpts[bad[0]]!r})',
        )
    bbox = ann.get('bbox')
    if not isinstance(bbox, list) or len(bbox) != 4 or _bad_indices(bbox):
        raise error(
            'bad_bbox',
            'bbox',
            f'{where}: field "bbox" must be [x, y, w, h] (4 finite numbers), '
            f'got {bbox!r}',
        )
    if bbox[2] < 0 or bbox[3] < 0:
        raise error(
            'bad_bbox',
            'bbox',
            f'{where}: field "bbox" {bbox!r} has a negative width or height',
        )


def _shape(value: Any) -> tuple | None:
    """``np.shape`` of a nested list, or None when it is ragged."""
    try:
        return np.shape(value)
    except ValueError:
        return None


def check_mpii_entry(
    entry: Any, idx: int, ann_file: str, num_joints: int = 16
) -> None:
    """Check one entry of an MPII json (mmpose / HRNet format).

    Checked: required fields; ``center`` is 2 finite numbers; ``scale`` a
    positive number; ``joints`` is ``num_joints x 2`` finite numbers;
    ``joints_vis`` is ``num_joints`` finite numbers >= 0.

    Args:
        entry (Any): The entry.
        idx (int): Its index in the file.
        ann_file (str): The json, for the messages.
        num_joints (int): Joints per person. Defaults to 16.

    Raises:
        DataError: The first problem found; the message names
            ``ann_file``, the entry (index and image) and the field.
    """
    image = entry.get('image', '?') if isinstance(entry, dict) else '?'
    where = f'{ann_file}: entry {idx} ({image})'

    def error(kind: str, field: str, message: str) -> DataError:
        return DataError(message, ann_file, kind, f'entry {idx}: {field}')

    if not isinstance(entry, dict):
        raise error('bad_value', '', f'{where} is not a json object')
    for field in ('image', 'center', 'scale', 'joints', 'joints_vis'):
        if field not in entry:
            raise error(
                'missing_field', field, f'{where} has no "{field}" field'
            )
    if not isinstance(entry['image'], str) or not entry['image']:
        raise error(
            'bad_value',
            'image',
            f'{where}: field "image" must be a file name, got '
            f'{entry["image"]!r}',
        )
    center = entry['center']
    if _shape(center) != (2,) or _bad_indices(center):
        raise error(
            'bad_value',
            'center',
            f'{where}: field "center" must be [x, y] (2 finite numbers), '
            f'got {center!r}',
        )
    scale = entry['scale']
    if not _is_number(scale) or scale <= 0:
        raise error(
            'bad_value',
            'scale',
            f'{where}: field "scale" must be a positive number, got {scale!r}',
        )
    for field, shape in (
        ('joints', (num_joints, 2)),
        ('joints_vis', (num_joints,)),
    ):
        found = _shape(entry[field])
        if found != shape:
            raise error(
                'bad_keypoints',
                field,
                f'{where}: field "{field}" has shape '
                f'{found if found is not None else "(ragged)"}, expected '
                f'{shape}',
            )
    flat = [v for joint in entry['joints'] for v in joint]
    bad = _bad_indices(flat)
    if bad:
        raise error(
            'bad_value',
            'joints',
            f'{where}: field "joints" holds non-numeric or NaN/inf values at '
            f'joints {sorted({i // 2 for i in bad})} (e.g. '
            f'{flat[bad[0]]!r})',
        )
    vis = entry['joints_vis']
    bad = [i for i, v in enumerate(vis) if not _is_number(v) or v < 0]
    if bad:
        raise error(
            'bad_value',
            'joints_vis',
            f'{where}: field "joints_vis" holds values other than numbers '
            f'>= 0 at joints {bad} (e.g. {vis[bad[0]]!r})',
        )
