"""Convert a Lite-HRNet checkpoint to the layout of a config's model.

Reads official Lite-HRNet / mmpose 0.x pose files (``keypoint_head.*``),
mmpose 1.x files, plain backbone state dicts and this package's seg / pose
checkpoints; prints what was matched and renamed. Exits with status 1,
listing the missing, unexpected and mismatched keys by module, when the
checkpoint is of another architecture or task (nothing is written then);
``--allow-new-head`` accepts another task's checkpoint (the backbone is
still checked strictly) and lists the head tensors it skipped.

    python tools/checkpoint/convert.py SRC CONFIG [--out DST]
        [--allow-new-head]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments. Defaults to ``sys.argv``.

    Returns:
        argparse.Namespace: ``src``, ``config``, ``out``,
        ``allow_new_head``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='checkpoint to convert')
    parser.add_argument('config', help='config of the target model')
    parser.add_argument(
        '--out', help='write the converted checkpoint here (default: report)'
    )
    parser.add_argument(
        '--allow-new-head',
        action='store_true',
        help='accept a checkpoint without the target task head (e.g. seg '
        '-> pose); the backbone is still checked strictly',
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Convert and print the report.

    Args:
        argv (list[str], optional): Arguments. Defaults to ``sys.argv``.

    Returns:
        int: Exit status (0 converted, 1 refused or unreadable).
    """
    args = parse_args(argv)
    # Imported here so that --help does not wait for torch and mmseg.
    from litehrnet_seg.checkpoint import (
        CheckpointError,
        CheckpointMismatchError,
        convert_checkpoint,
    )

    try:
        report = convert_checkpoint(
            args.src, args.config, args.out, allow_new_head=args.allow_new_head
        )
    except CheckpointMismatchError as e:
        print(e.report.format())
        print(f'error: {e}', file=sys.stderr)
        return 1
    except (CheckpointError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(report.format())
    if args.out:
        print(f'written: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
