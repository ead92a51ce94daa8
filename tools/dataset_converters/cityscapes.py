"""Convert Cityscapes annotations to ``*_labelTrainIds.png`` label maps.

Usage::

    python tools/dataset_converters/cityscapes.py CITYSCAPES_ROOT \\
        [--gt-dir gtFine] [-o OUT_DIR] [--nproc N]

For every frame under ``CITYSCAPES_ROOT/<gt-dir>`` a
``<frame>_<gt>_labelTrainIds.png`` is written next to its source annotation:

* from ``<frame>_<gt>_polygons.json`` (preferred), rasterised with
  ``cityscapesscripts.preparation.json2labelImg``;
* otherwise from ``<frame>_<gt>_labelIds.png``, mapped pixel-wise through
  the label table of ``cityscapesscripts.helpers.labels`` (ids whose
  ``trainId`` is ``255`` or ``-1``, and ids unknown to the table, become
  ``255``, the ignore index).

Split lists ``train.txt`` / ``val.txt`` / ``test.txt`` (one per split folder
that exists under the gt dir) are written into ``OUT_DIR`` (default:
``CITYSCAPES_ROOT``). Each line is a frame path relative to the split folder,
without suffix (e.g. ``frankfurt/frankfurt_000000_000294``), the format that
mmseg's ``BaseSegDataset`` expects in ``ann_file``.

The exit status is non-zero when anything could not be converted.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
from collections.abc import Sequence
from dataclasses import dataclass

# Run from a checkout without installing: the repository root first.
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)

import mmcv  # noqa: E402
import numpy as np  # noqa: E402
from cityscapesscripts.helpers.labels import labels as CS_LABELS  # noqa
from cityscapesscripts.preparation.json2labelImg import json2labelImg  # noqa
from mmengine.utils import (  # noqa: E402
    mkdir_or_exist,
    track_parallel_progress,
    track_progress,
)

from litehrnet_seg.datasets.cityscapes import find_frames  # noqa: E402
from litehrnet_seg.datasets.integrity import DataError, read_image  # noqa

SPLITS = ('train', 'val', 'test')
IGNORE_INDEX = 255
# Annotation files a frame may have, by kind (after ``_<gt tag>_``).
SOURCE_KINDS = ('polygons.json', 'labelIds.png')
OTHER_KINDS = ('instanceIds.png', 'color.png')


@dataclass(frozen=True)
class Frame:
    """Annotation files of one frame.

    Args:
        name: Frame path relative to the gt dir, without the ``_<gt>_*``
            suffix, e.g. ``val/frankfurt/frankfurt_000000_000294``.
        out_file: Path of the ``*_labelTrainIds.png`` to write.
        json_file: Path of the polygon json, or ``None``.
        labelids_file: Path of the ``*_labelIds.png``, or ``None``.
    """

    name: str
    out_file: str
    json_file: str | None = None
    labelids_file: str | None = None


# labelId -> trainId; ids with trainId 255 or -1, and unknown ids, -> 255.
TRAINID_LUT = np.full(256, IGNORE_INDEX, dtype=np.uint8)
for _label in CS_LABELS:
    if 0 <= _label.id < 256 and 0 <= _label.trainId < IGNORE_INDEX:
        TRAINID_LUT[_label.id] = _label.trainId


def labelids_to_trainids(label_ids: np.ndarray) -> np.ndarray:
    """Map a Cityscapes labelIds map to trainIds.

    Args:
        label_ids: Integer array of Cityscapes label ids (any shape).

    Returns:
        np.ndarray: ``uint8`` array of the same shape with values in
        ``{0, ..., 18, 255}``; values outside ``0..255`` become ``255``.

    Raises:
        TypeError: If ``label_ids`` is not of an integer dtype.
    """
    label_ids = np.asarray(label_ids)
    if not np.issubdtype(label_ids.dtype, np.integer):
        raise TypeError(
            f'label ids must be integers, got dtype {label_ids.dtype}'
        )
    out = np.full(label_ids.shape, IGNORE_INDEX, dtype=np.uint8)
    valid = (label_ids >= 0) & (label_ids < 256)
    out[valid] = TRAINID_LUT[label_ids[valid]]
    return out


def convert_frame(frame: Frame) -> str:
    """Write the trainIds png of one frame, preferring the polygon json.

    Args:
        frame: The frame to convert.

    Returns:
        str: ``'json'`` or ``'labelIds'``, the source that was used.

    Raises:
        DataError: If a source file cannot be read or converted; the
            message names it.
    """
    if frame.json_file is not None:
        try:
            json2labelImg(frame.json_file, frame.out_file, 'trainIds')
        except (Exception, SystemExit) as exc:
            # json2labelImg calls sys.exit() on unknown labels.
            raise DataError(
                f'cannot convert polygon json {frame.json_file}: {exc!r}',
                frame.json_file,
                'unreadable_label',
            ) from exc
        return 'json'
    path = frame.labelids_file
    label_ids = read_image(path, 'label', 'unchanged')
    if label_ids.ndim != 2:
        raise DataError(
            f'labelIds image {path} must be single-channel, got shape '
            f'{label_ids.shape}',
            path,
            'bad_label_format',
        )
    if not mmcv.imwrite(labelids_to_trainids(label_ids), frame.out_file):
        raise OSError(f'cannot write {frame.out_file}')
    return 'labelIds'


def _convert_frame_safe(frame: Frame) -> tuple[str, str | None]:
    """:func:`convert_frame` as ``(source, None)`` or ``('', error)``."""
    try:
        return convert_frame(frame), None
    except (DataError, OSError) as exc:
        return '', str(exc)


def collect_frames(gt_dir: str) -> list[Frame]:
    """Collect all annotated frames under ``gt_dir``.

    Args:
        gt_dir: The gt directory, e.g. ``<root>/gtFine``; its name is the
            tag of the files (``<frame>_gtFine_labelIds.png``).

    Returns:
        list[Frame]: Frames sorted by name.

    Raises:
        ValueError: If some frames have neither a polygon json nor a labelIds
            png (all of them are named), or if no frame is found.
    """
    tag = osp.basename(osp.normpath(gt_dir))
    suffixes = [f'_{tag}_{kind}' for kind in SOURCE_KINDS + OTHER_KINDS]
    json_suffix, labelids_suffix = suffixes[:2]
    frames, missing = [], []
    for name, files in find_frames(gt_dir, suffixes).items():
        frame = Frame(
            name=name,
            out_file=osp.join(gt_dir, f'{name}_{tag}_labelTrainIds.png'),
            json_file=files.get(json_suffix),
            labelids_file=files.get(labelids_suffix),
        )
        if frame.json_file is None and frame.labelids_file is None:
            missing.append(osp.join(gt_dir, f'{name}_{tag}_*'))
        frames.append(frame)
    if missing:
        raise ValueError(
            f'{len(missing)} frame(s) have neither a *_polygons.json nor a '
            '*_labelIds.png: ' + ', '.join(missing)
        )
    if not frames:
        raise ValueError(
            f'no annotations found under {gt_dir!r}: expected files named '
            f'<frame>_{tag}_polygons.json or <frame>_{tag}_labelIds.png'
        )
    return frames


def make_split_lists(
    frames: Sequence[Frame], out_dir: str, gt_dir: str
) -> dict[str, int]:
    """Write ``{split}.txt`` for every split folder that exists in ``gt_dir``.

    Args:
        frames: Converted frames (``Frame.name`` starts with the split).
        out_dir: Directory that receives the lists (created if needed).
        gt_dir: The gt directory, used to find the existing split folders.

    Returns:
        dict[str, int]: Number of entries written per split.
    """
    mkdir_or_exist(out_dir)
    counts = {}
    for split in SPLITS:
        if not osp.isdir(osp.join(gt_dir, split)):
            continue
        prefix = f'{split}/'
        names = sorted(
            f.name[len(prefix) :] for f in frames if f.name.startswith(prefix)
        )
        with open(osp.join(out_dir, f'{split}.txt'), 'w') as file:
            file.writelines(f'{name}\n' for name in names)
        counts[split] = len(names)
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``argv``: None uses ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description='Convert Cityscapes annotations to *_labelTrainIds.png '
        'and write train/val/test split lists.'
    )
    parser.add_argument('cityscapes_path', help='Cityscapes root directory')
    parser.add_argument(
        '--gt-dir',
        default='gtFine',
        help='annotation directory, relative to the root (default: gtFine)',
    )
    parser.add_argument(
        '-o',
        '--out-dir',
        help='directory for the split lists (default: the Cityscapes root)',
    )
    parser.add_argument(
        '--nproc', type=int, default=1, help='number of worker processes'
    )
    args = parser.parse_args(argv)
    if args.nproc < 1:
        parser.error(f'--nproc must be >= 1, got {args.nproc}')
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter.

    Args:
        argv: Arguments without the program name; ``None`` uses
            ``sys.argv[1:]``.

    Returns:
        int: ``0`` on success.

    Raises:
        SystemExit: With an error message naming the offending path(s) when
            the input is invalid or some frames could not be converted.
    """
    args = parse_args(argv)
    root = args.cityscapes_path
    gt_dir = osp.join(root, args.gt_dir)
    out_dir = args.out_dir or root
    if not osp.isdir(root):
        raise SystemExit(f'error: Cityscapes root {root!r} does not exist')
    if not osp.isdir(gt_dir):
        raise SystemExit(
            f'error: annotation directory {gt_dir!r} not found: expected the '
            'Cityscapes root to contain it (e.g. gtFine/{train,val,test}/)'
        )
    try:
        frames = collect_frames(gt_dir)
    except ValueError as exc:
        raise SystemExit(f'error: {exc}') from exc

    if args.nproc > 1:
        results = track_parallel_progress(
            _convert_frame_safe, frames, args.nproc
        )
    else:
        results = track_progress(_convert_frame_safe, frames)

    errors = [error for _, error in results if error is not None]
    sources = [source for source, _ in results]
    print(
        f'frames converted: {len(frames) - len(errors)}/{len(frames)} '
        f'(from json: {sources.count("json")}, '
        f'from labelIds: {sources.count("labelIds")})'
    )
    if errors:
        raise SystemExit(
            f'error: {len(errors)} frame(s) failed, split lists not '
            'written:\n' + '\n'.join(errors)
        )
    counts = make_split_lists(frames, out_dir, gt_dir)
    print(
        'split lists: '
        + (', '.join(f'{k}={v}' for k, v in counts.items()) or 'none')
        + f' (in {out_dir})'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
