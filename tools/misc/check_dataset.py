"""Check the data a config trains (or tests) on, before the run.

Usage::

    python tools/misc/check_dataset.py CONFIG [--split train|val|test]
        [--nproc N] [--out report.json] [--max-listed N]
        [--cfg-options KEY=VALUE ...]

Builds the split's dataset exactly as training does, then runs the
training-time checks (``litehrnet_seg.datasets.integrity.checks``) over
every sample of its ``data_list``: the annotation checks of the dataset
(missing labels, malformed keypoints, NaN values, ...) are collected
instead of raised, and each sample goes through the checked loaders
(``LoadImageFromFileChecked``, ``LoadAnnotationsChecked``,
``CheckSegSample``; the pipeline's own when it has them). So it checks
exactly the files training reads, and nothing else. Every finding names
the offending file (and field).

Exit status: 0 when no problem was found, 1 when some were (or the
dataset cannot be built), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from collections import Counter
from collections.abc import Sequence
from functools import partial

# Run from a checkout without installing: the repository root first.
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dataset import BaseDataset  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.utils import track_parallel_progress, track_progress  # noqa
from mmseg.registry import DATASETS  # noqa: E402

# Importing it registers the project's datasets and transforms.
from litehrnet_seg.datasets import (  # noqa: E402
    CheckSegSample,
    DataError,
    LoadAnnotationsChecked,
    LoadImageFromFileChecked,
)
from litehrnet_seg.datasets.integrity import (  # noqa: E402
    collect_data_errors,
    iter_datasets,
)

SPLITS = ('train', 'val', 'test')


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments without the program name;
            None uses ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The arguments.
    """
    parser = argparse.ArgumentParser(
        description='Check every sample of the dataset a config uses and '
        'report each bad file.',
        epilog='exit status: 0 clean, 1 problems found, 2 bad usage',
    )
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--split',
        choices=SPLITS,
        default='train',
        help='which dataloader of the config to check (default: train)',
    )
    parser.add_argument(
        '--nproc',
        type=int,
        default=1,
        help='worker processes for decoding files (default: 1)',
    )
    parser.add_argument('--out', help='write every finding to this json')
    parser.add_argument(
        '--max-listed',
        type=int,
        default=20,
        help='how many findings to print (default: 20)',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs; e.g. '
        'train_dataloader.dataset.data_root=/data/cityscapes',
    )
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config file {args.config!r} does not exist')
    if args.nproc < 1:
        parser.error(f'--nproc must be >= 1, got {args.nproc}')
    if args.max_listed < 0:
        parser.error(f'--max-listed must be >= 0, got {args.max_listed}')
    if args.out and not osp.isdir(osp.dirname(osp.abspath(args.out))):
        parser.error(f'--out {args.out!r}: its folder does not exist')
    return args


def unserialized(cfg: dict) -> dict:
    """Set ``serialize_data=False`` in every dataset of a dataset config.

    mmengine cannot serialize an empty data list, which a dataset whose
    every sample was collected as bad has; the checker reads each item once
    anyway.

    Args:
        cfg (dict): A dataset config (wrappers included), changed in place.

    Returns:
        dict: ``cfg``.
    """
    cls = DATASETS.get(cfg['type']) if isinstance(cfg['type'], str) else None
    if isinstance(cls, type) and issubclass(cls, BaseDataset):
        cfg['serialize_data'] = False
    inner = cfg.get('datasets', cfg.get('dataset'))
    if isinstance(inner, dict) and 'type' not in inner:
        inner = list(inner.values())  # MultiTaskDataset: task -> config
    for child in inner if isinstance(inner, list) else [inner]:
        if isinstance(child, dict):
            unserialized(child)
    return cfg


def sample_checks(dataset) -> list:
    """The loading checks of one dataset's samples, in pipeline order.

    The pipeline's own checked transforms are used (same arguments as in
    training); a missing one is added with defaults (labels are checked
    against the dataset's classes and ``ignore_index``).

    Args:
        dataset: A leaf dataset (with ``pipeline`` and ``metainfo``).

    Returns:
        list: The transforms to run on each data item.
    """
    wanted = [LoadImageFromFileChecked]
    if len(dataset) and dataset.get_data_info(0).get('seg_map_path'):
        wanted += [LoadAnnotationsChecked, CheckSegSample]
    pipeline = getattr(dataset, 'pipeline', None)
    own = list(getattr(pipeline, 'transforms', []))
    checks = []
    for cls in wanted:
        found = [t for t in own if isinstance(t, cls)]
        if found:
            checks.append(found[0])
        elif cls is CheckSegSample:
            checks.append(
                CheckSegSample(
                    len(dataset.metainfo['classes']),
                    getattr(dataset, 'ignore_index', 255),
                )
            )
        else:
            checks.append(cls())
    return checks


def check_item(checks: list, info: dict) -> DataError | None:
    """Run the checks on one data item; return its error, if any."""
    results = dict(info)
    try:
        for check in checks:
            results = check(results)
    except DataError as err:
        return err
    return None


def run(cfg: Config, split: str, nproc: int) -> tuple[list[DataError], int]:
    """Build the split's dataset and check every sample.

    Args:
        cfg (Config): The config.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        nproc (int): Worker processes.

    Returns:
        tuple: The findings and the number of samples checked.

    Raises:
        KeyError: If the config has no dataloader for ``split``.
    """
    key = f'{split}_dataloader'
    if not cfg.get(key):
        raise KeyError(f'the config has no {key}')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    with collect_data_errors() as errors:
        dataset = DATASETS.build(unserialized(cfg[key]['dataset']))
        leaves = list(iter_datasets(dataset))
        for leaf in leaves:
            leaf.full_init()  # lazy_init datasets load (and check) here
    total = len(errors)
    for leaf in leaves:
        items = [leaf.get_data_info(i) for i in range(len(leaf))]
        total += len(items)
        func = partial(check_item, sample_checks(leaf))
        if nproc > 1:
            found = track_parallel_progress(
                func, items, nproc, file=sys.stderr
            )
        else:
            found = track_progress(func, items, file=sys.stderr)
        errors += [err for err in found if err is not None]
    return errors, total


def summary(errors: list[DataError], total: int, max_listed: int) -> str:
    """Counts per kind and the first findings, as text."""
    lines = [f'{total} samples checked, {len(errors)} bad']
    counts = Counter(err.kind for err in errors).most_common()
    lines += [f'  {kind}: {count}' for kind, count in counts]
    if errors and max_listed:
        lines.append('findings:')
        lines += [f'  {err.kind}: {err}' for err in errors[:max_listed]]
        if len(errors) > max_listed:
            more = len(errors) - max_listed
            lines.append(f'  ... and {more} more (write them all with --out)')
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check.

    Args:
        argv (Sequence[str], optional): Arguments without the program name;
            None uses ``sys.argv[1:]``.

    Returns:
        int: The exit status: 0 clean, 1 problems found or the dataset
        cannot be built. Bad usage exits with 2 from :func:`parse_args`.
    """
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        errors, total = run(cfg, args.split, args.nproc)
    except (KeyError, FileNotFoundError, DataError) as err:
        # No dataset to check: a missing folder, an unreadable json, ...
        print(
            f'error: cannot build the {args.split} dataset of '
            f'{args.config}: {err}',
            file=sys.stderr,
        )
        return 1
    print(summary(errors, total, args.max_listed))
    if args.out:
        found = [
            dict(kind=e.kind, path=e.path, field=e.field, message=str(e))
            for e in errors
        ]
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(dict(checked=total, errors=found), f, indent=2)
        print(f'full report ({len(errors)} findings): {args.out}')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
