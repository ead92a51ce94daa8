"""Parameters and FLOPs of a model config at given input sizes.

Uses mmengine's counter (``mmengine.analysis``, fvcore-style: one
multiply-add counts as one FLOP). Operators the counter does not know are
skipped and listed, so it is clear what the figure leaves out.

    python tools/analysis/get_flops.py CONFIG [--shape H W [H W ...]]
"""

import argparse
import logging
import sys
from pathlib import Path

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.model import revert_sync_batchnorm

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import litehrnet_seg  # noqa: E402,F401  (registers models, compat layer)
from litehrnet_seg.checkpoint import build_model  # noqa: E402
from litehrnet_seg.deploy import TensorModel  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[512, 1024],
        help='input height and width pairs, e.g. --shape 512 1024 1024 2048',
    )
    args = parser.parse_args(argv)
    if len(args.shape) % 2:
        parser.error('--shape takes pairs of H W')
    return args


def build_bn_model(config: str) -> torch.nn.Module:
    """Eval-mode model of a config (``mmseg::`` names allowed), SyncBN
    reverted to BN."""
    model = build_model(config)
    return revert_sync_batchnorm(model).eval()


def complexity(model: torch.nn.Module, height: int, width: int) -> dict:
    """FLOPs (mmengine counter) and parameter count for one input size."""
    wrapped = TensorModel(model)
    inputs = torch.randn(1, 3, height, width)
    analyzer = FlopAnalyzer(wrapped, inputs)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        flops = analyzer.total()
    return dict(
        shape=(height, width),
        flops=flops,
        params=parameter_count(model)[''],
        backbone_flops=analyzer.by_module().get('model.backbone', 0),
        skipped_ops=dict(analyzer.unsupported_ops()),
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.getLogger('mmengine').setLevel(logging.ERROR)
    model = build_bn_model(args.config)
    shapes = list(zip(args.shape[::2], args.shape[1::2], strict=True))
    print(f'config: {args.config}')
    for height, width in shapes:
        r = complexity(model, height, width)
        print(
            f'input 3x{height}x{width}: params {r["params"]:,} | '
            f'FLOPs {r["flops"] / 1e9:.3f} G (backbone '
            f'{r["backbone_flops"] / 1e9:.3f} G) | skipped ops: '
            f'{r["skipped_ops"] or "none"}'
        )


if __name__ == '__main__':
    main()
