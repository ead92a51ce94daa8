"""Check a Cityscapes, COCO-keypoints or MPII folder before training.

Usage::

    python tools/misc/check_dataset.py DATA_ROOT [--type cityscapes|coco|mpii]
        [--split SPLIT] [--nproc N] [--out report.json] [--max-listed N]
        [--ann-file FILE] [--img-dir DIR] [--strict] [--no-progress]

Finds missing image/label pairs, unreadable images and label maps, label
ids outside the valid set, image/label size mismatches, malformed keypoint
arrays, NaN or non-numeric values and malformed boxes. Each finding names
the offending file (and the json field). Prints counts per issue kind and
the first findings; ``--out`` writes them all as json.

Exit status: 0 when no error was found (warnings allowed unless
``--strict``), 1 when errors were found, 2 on bad usage (e.g. the folder
does not exist, or its type cannot be detected).
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
from collections.abc import Sequence

# Run from a checkout without installing: the repository root first.
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)

from litehrnet_seg.datasets.integrity import (  # noqa: E402
    DATASET_TYPES,
    ISSUE_KINDS,
    check_dataset,
    detect_dataset_type,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments without the program name;
            None uses ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The arguments, with ``type`` filled in (detected
        from the folder layout when not given).
    """
    kinds = '\n'.join(f'  {k}: {v}' for k, v in ISSUE_KINDS.items())
    parser = argparse.ArgumentParser(
        description='Check a dataset folder (Cityscapes, COCO keypoints, '
        'MPII) and report every bad file.',
        epilog=f'issue kinds:\n{kinds}\n\nexit status: 0 clean, 1 errors '
        'found, 2 bad usage',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('root', help='dataset folder')
    parser.add_argument(
        '--type',
        choices=DATASET_TYPES,
        help='dataset type (default: detected from the folder layout)',
    )
    parser.add_argument(
        '--split',
        help='check only this split (cityscapes: train/val/test; coco: '
        'val2017 or val; mpii: train/val). Default: all found',
    )
    parser.add_argument(
        '--nproc',
        type=int,
        default=1,
        help='worker processes for decoding files (default: 1)',
    )
    parser.add_argument('--out', help='write the full report to this json')
    parser.add_argument(
        '--max-listed',
        type=int,
        default=20,
        help='how many findings to print (default: 20)',
    )
    parser.add_argument(
        '--ann-file',
        help='coco/mpii: annotation json, relative to root (default: '
        'searched in root/annotations and root)',
    )
    parser.add_argument(
        '--img-dir',
        help='coco/mpii: image folder, relative to root (default: from '
        'the layout)',
    )
    parser.add_argument(
        '--strict',
        action='store_true',
        help='exit 1 on warnings too (e.g. labelTrainIds not generated yet)',
    )
    parser.add_argument(
        '--no-progress', action='store_true', help='hide the progress bar'
    )
    args = parser.parse_args(argv)
    if not osp.isdir(args.root):
        parser.error(
            f'dataset folder {args.root!r} does not exist or is not a folder'
        )
    if args.nproc < 1:
        parser.error(f'--nproc must be >= 1, got {args.nproc}')
    if args.max_listed < 0:
        parser.error(f'--max-listed must be >= 0, got {args.max_listed}')
    if args.out and not osp.isdir(osp.dirname(osp.abspath(args.out))):
        parser.error(
            f'--out {args.out!r}: folder '
            f'{osp.dirname(osp.abspath(args.out))!r} does not exist'
        )
    if args.type is None:
        try:
            args.type = detect_dataset_type(args.root)
        except ValueError as err:
            parser.error(str(err))
    if args.type == 'cityscapes' and (args.ann_file or args.img_dir):
        parser.error('--ann-file/--img-dir apply to coco and mpii only')
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check.

    Args:
        argv (Sequence[str], optional): Arguments without the program name;
            None uses ``sys.argv[1:]``.

    Returns:
        int: The exit status: 0 clean, 1 errors found (or warnings with
        ``--strict``). Bad usage exits with 2 from :func:`parse_args`.
    """
    args = parse_args(argv)
    report = check_dataset(
        args.root,
        args.type,
        split=args.split,
        nproc=args.nproc,
        progress=not args.no_progress,
        ann_file=args.ann_file,
        img_dir=args.img_dir,
    )
    print(report.summary(args.max_listed))
    if args.out:
        report.dump(args.out)
        print(f'full report ({len(report.issues)} findings): {args.out}')
    failed = not report.ok or (args.strict and report.warnings)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
