"""Parameters and FLOPs of a model config at given input sizes.

Two counting conventions (``--convention``); compare figures only within
one:

* ``mmengine`` (default): mmengine's counter (``mmengine.analysis``,
  fvcore-style: one multiply-add = one FLOP, every call counted, BN,
  pooling and upsampling per element, decimal G = 1e9). Operators it does
  not know are skipped and listed.
* ``official``: the counter behind the Lite-HRNet paper's figures (the
  official repository's vendored torchstat; see
  ``litehrnet_seg/analysis/official_flops.py``): leaf modules only, the
  last call of each, functional ops count 0, binary G = 2**30. Module
  types it counts 0 are listed.

Models are built with plain BN where the config says SyncBN.

    python tools/analysis/get_flops.py CONFIG [--shape H W [H W ...]]
        [--convention {mmengine,official}]
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(
            f'expected a positive integer (pixels), got {text!r}'
        )
    return value


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and check the arguments (exit 2 on bad ones, before any
    model is built)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config', help='model config file (or an mmseg:: config name)'
    )
    parser.add_argument(
        '--shape',
        type=_positive_int,
        nargs='+',
        default=[512, 1024],
        metavar='PX',
        help='input height and width pairs, e.g. --shape 512 1024 1024 2048'
        ' (default: 512 1024)',
    )
    parser.add_argument(
        '--convention',
        choices=('mmengine', 'official'),
        default='mmengine',
        help="FLOPs convention: mmengine's counter (default) or the "
        "Lite-HRNet paper's (binary units, comparable with the paper)",
    )
    args = parser.parse_args(argv)
    if len(args.shape) % 2:
        parser.error(
            f'argument --shape: expected pairs of H W, got '
            f'{len(args.shape)} value(s)'
        )
    if not args.config.startswith('mmseg::') and not (
        Path(args.config).is_file()
    ):
        parser.error(f'argument config: no such file: {args.config}')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    # Imported after the argument check: bad arguments fail fast.
    import litehrnet_seg  # noqa: F401  (registers models, compat layer)
    from litehrnet_seg.analysis import (
        UNITS,
        build_counting_model,
        count_flops,
    )

    logging.getLogger('mmengine').setLevel(logging.ERROR)
    model = build_counting_model(args.config)
    shapes = list(zip(args.shape[::2], args.shape[1::2], strict=True))
    units = UNITS[args.convention]
    if args.convention == 'official':
        convention = "official (the paper's counter), M = 2^20, G = 2^30"
        skipped = 'module types counted 0'
    else:
        convention = "mmengine's counter, M = 1e6, G = 1e9"
        skipped = 'skipped ops'
    print(f'config: {args.config}')
    print(f'FLOPs convention: {convention}')
    for height, width in shapes:
        r = count_flops(model, height, width, args.convention)
        name = 'G' if r['flops'] >= units['G'] else 'M'  # M: pose crops
        unit, digits = units[name], (3 if name == 'G' else 1)
        print(
            f'input 3x{height}x{width}: params {r["params"]:,} | '
            f'FLOPs {r["flops"] / unit:.{digits}f} {name} (backbone '
            f'{r["backbone_flops"] / unit:.{digits}f} {name}) | {skipped}: '
            f'{r["skipped"] or "none"}'
        )


if __name__ == '__main__':
    main()
