"""Write only the backbone tensors of a seg, pose or multi-task checkpoint.

The output holds ``state_dict`` (bare backbone keys, or ``backbone.*`` with
``--keep-prefix``) and ``meta`` (arch, task, source, its sha256, date),
which is printed as JSON. Use it as
``model.backbone.init_cfg=dict(type='Pretrained', checkpoint=DST)``.

    python tools/checkpoint/extract_backbone.py SRC DST [--keep-prefix]
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments. Defaults to ``sys.argv``.

    Returns:
        argparse.Namespace: ``src``, ``dst``, ``keep_prefix``.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='seg, pose or multi-task checkpoint')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument(
        '--keep-prefix',
        action='store_true',
        help='keep the "backbone." prefix on the keys (then load with '
        "prefix='backbone.')",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Extract and print the metadata.

    Args:
        argv (list[str], optional): Arguments. Defaults to ``sys.argv``.

    Returns:
        int: Exit status (0 written, 1 no backbone or unreadable file).
    """
    args = parse_args(argv)
    # Imported here so that --help does not wait for torch and mmseg.
    from litehrnet_seg.checkpoint import extract_backbone

    try:
        meta = extract_backbone(args.src, args.dst, args.keep_prefix)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
