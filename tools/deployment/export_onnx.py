"""Export a segmentation or pose config to ONNX and verify it.

The exported graph takes normalised images (N, 3, H, W) and returns what
the model's ``mode='tensor'`` forward returns: segmentation logits at
stride 4 (dynamic batch, height and width; any size from 32 pixels, also
sides not divisible by 32) or keypoint heatmaps (dynamic batch, fixed crop).
After exporting, onnxruntime's output is compared with PyTorch's on a real
image, at its own size and (segmentation) at a size not divisible by 32;
the max abs difference is printed and the command fails (exit 1) above
``--atol``. Finally onnxruntime's CPU latency is compared with PyTorch's.

    python tools/deployment/export_onnx.py CONFIG [--checkpoint CKPT] \
        [--out model.onnx] [--image IMG] [--shape H W] [--atol 1e-4]
"""

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from litehrnet_seg.apis import init_model  # noqa: E402
from litehrnet_seg.deploy import (  # noqa: E402
    ParityError,
    TensorModel,
    check_parity,
    export_onnx,
    onnxruntime_session,
    run_session,
    time_calls,
)

DEFAULT_IMAGE = (
    Path(__file__).resolve().parents[2]
    / 'tests/data/cityscapes/leftImg8bit/val/frankfurt/'
    'frankfurt_000000_000294_leftImg8bit.png'
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config file')
    parser.add_argument('--checkpoint', help='weights (default: random)')
    parser.add_argument('--out', help='ONNX file (default: <config>.onnx)')
    parser.add_argument(
        '--image',
        default=str(DEFAULT_IMAGE),
        help='real image for the parity check (default: bundled frame)',
    )
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        help='H W of the latency comparison (default: 512 1024 for '
        'segmentation, the crop size for pose)',
    )
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument('--atol', type=float, default=1e-4)
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None)
    return parser.parse_args(argv)


def load_model(config: str, checkpoint: str | None) -> TensorModel:
    from mmengine.model import revert_sync_batchnorm

    if checkpoint is None:
        print('No --checkpoint: exporting random weights.', file=sys.stderr)
    model = init_model(config, checkpoint, device='cpu')
    return TensorModel(revert_sync_batchnorm(model)).eval()


def preprocess(model: TensorModel, image, size=None) -> torch.Tensor:
    """Normalised (1, 3, H, W) input with the model's data preprocessor."""
    if size is not None:
        image = cv2.resize(image, (size[1], size[0]))
    chw = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    data = model.model.data_preprocessor(dict(inputs=[chw]), False)
    return data['inputs']


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.getLogger('mmengine').setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    image = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if image is None:
        print(f'error: cannot read --image {args.image}', file=sys.stderr)
        return 2
    model = load_model(args.config, args.checkpoint)
    is_seg = hasattr(model.model, 'decode_head')
    if is_seg:
        shape = tuple(args.shape or (512, 1024))
        h, w = image.shape[:2]
        # A real-size check and one with sides not divisible by 32.
        checks = [
            preprocess(model, image),
            preprocess(model, image, (h // 2 + 13, w // 2 + 7)),
        ]
    else:
        width, height = model.model.cfg.codec['input_size']
        shape = tuple(args.shape or (height, width))
        checks = [preprocess(model, image, (height, width))]
    out = Path(args.out or Path(args.config).with_suffix('.onnx').name)
    start = time.perf_counter()
    export_onnx(
        model,
        out,
        checks[0],
        dynamic_hw=is_seg,
        opset=args.opset,
        output_name='seg_logits' if is_seg else 'heatmaps',
    )
    print(
        f'exported {out} ({out.stat().st_size / 2**20:.1f} MiB, opset '
        f'{args.opset}) in {time.perf_counter() - start:.0f} s'
    )
    session = onnxruntime_session(out, args.threads)
    failed = False
    for x in checks:
        size = f'{x.shape[-2]}x{x.shape[-1]}'
        try:
            diff = check_parity(session, model, x, args.atol)
            print(f'parity {size}: max abs diff {diff:.2e} (ok)')
        except ParityError as e:
            print(f'parity {size}: FAILED: {e}', file=sys.stderr)
            failed = True
    x = torch.randn(1, 3, *shape)
    ort_ms = 1e3 * statistics.median(
        time_calls(lambda: run_session(session, x), args.runs)
    )
    with torch.inference_mode():
        torch_ms = 1e3 * statistics.median(
            time_calls(lambda: model(x), args.runs)
        )
    print(
        f'latency {shape[0]}x{shape[1]}, batch 1, '
        f'{torch.get_num_threads()} threads: onnxruntime {ort_ms:.1f} ms, '
        f'PyTorch eager {torch_ms:.1f} ms ({torch_ms / ort_ms:.2f}x)'
    )
    if failed:
        print(
            f'error: {out} was written but does not match PyTorch within '
            f'--atol {args.atol:g}',
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
