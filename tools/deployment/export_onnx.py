"""Export a segmentation or pose config to ONNX and verify it.

The exported graph takes normalised images (N, 3, H, W) and returns what
the model's ``mode='tensor'`` forward returns: segmentation logits at
stride 4 (dynamic batch, height and width; any size from 32 pixels, also
sides not divisible by 32) or keypoint heatmaps (dynamic batch, fixed crop).
``--exporter`` picks the ``torch.export``-based exporter (default) or the
TorchScript tracer (``dynamo=False``, what mmdeploy and older toolchains
use); both give the same dynamic graph. After exporting, onnxruntime's
output is compared with PyTorch's on a real image, at its own size and
(segmentation) at a size not divisible by 32; the max abs and relative
differences are printed and the command fails (exit 1) above ``--atol``.
Finally onnxruntime's CPU latency is compared with PyTorch's.

``--int8 --calib-dir DIR`` also writes ``<out>.int8.onnx``: onnxruntime
static quantization (QDQ) calibrated on the images in DIR, INT8
per-channel weights with 16-bit activations (``--int8-activations
uint8`` for all-8-bit, less accurate) and Lite-HRNet's channel-weighting
paths and the classifier kept in float; it prints the INT8 vs float
latency (interleaved runs), the sizes and the argmax agreement with the
float model on the check images and the calibration images.

    python tools/deployment/export_onnx.py CONFIG [--checkpoint CKPT] \
        [--out model.onnx] [--exporter {dynamo,torchscript}] \
        [--image IMG] [--shape H W] [--atol 1e-4] \
        [--int8 --calib-dir DIR [--int8-activations {uint16,uint8}]]
"""

import argparse
import functools
import logging
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from litehrnet_seg.checkpoint import (  # noqa: E402
    CheckpointError,
    CheckpointMismatchError,
    build_model,
)
from litehrnet_seg.deploy import (  # noqa: E402
    EXPORTERS,
    CalibrationReader,
    ParityError,
    TensorModel,
    argmax_agreement,
    calibration_images,
    export_onnx,
    int8_op_count,
    onnxruntime_session,
    parity_errors,
    quantize_int8,
    run_session,
    time_calls,
)
from litehrnet_seg.deploy.int8 import ACTIVATION_TYPES  # noqa: E402

DEFAULT_IMAGE = (
    Path(__file__).resolve().parents[2]
    / 'tests/data/cityscapes/leftImg8bit/val/frankfurt/'
    'frankfurt_000000_000294_leftImg8bit.png'
)


def _at_least(minimum, kind=int):
    """argparse type: a number >= ``minimum``, else a clear error."""
    noun = 'an integer' if kind is int else 'a number'

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value >= minimum:
            raise argparse.ArgumentTypeError(
                f'expected {noun} >= {minimum:g}, got {text!r}'
            )
        return value

    return parse


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config file')
    parser.add_argument('--checkpoint', help='weights (default: random)')
    parser.add_argument('--out', help='ONNX file (default: <config>.onnx)')
    parser.add_argument(
        '--exporter',
        choices=EXPORTERS,
        default='dynamo',
        help='torch.export-based (default) or the TorchScript tracer',
    )
    parser.add_argument(
        '--image',
        default=str(DEFAULT_IMAGE),
        help='real image for the parity check (default: bundled frame)',
    )
    parser.add_argument(
        '--shape',
        type=_at_least(32),
        nargs=2,
        metavar=('H', 'W'),
        help='H W (each >= 32) of the latency comparison (default: 512 '
        '1024 for segmentation, the crop size for pose)',
    )
    parser.add_argument('--opset', type=_at_least(17), default=18)
    parser.add_argument('--atol', type=_at_least(0.0, float), default=1e-4)
    parser.add_argument('--runs', type=_at_least(1), default=10)
    parser.add_argument('--threads', type=_at_least(1), default=None)
    parser.add_argument(
        '--int8',
        action='store_true',
        help='also write <out>.int8.onnx (static INT8, needs --calib-dir)',
    )
    parser.add_argument(
        '--calib-dir',
        help='folder of real images (searched recursively) to calibrate '
        'the INT8 model on',
    )
    parser.add_argument(
        '--int8-activations',
        choices=ACTIVATION_TYPES,
        default=ACTIVATION_TYPES[0],
        help='activation type of the INT8 model: uint16 (default, '
        'accurate) or uint8 (all-8-bit, loses accuracy on Lite-HRNet)',
    )
    args = parser.parse_args(argv)
    # Everything a run needs is checked here, before any work.
    if args.int8 and not args.calib_dir:
        parser.error('--int8 needs --calib-dir DIR (a folder of images)')
    if args.calib_dir and not args.int8:
        parser.error('--calib-dir is only used with --int8')
    if args.int8:
        try:
            args.calib_files = calibration_images(args.calib_dir)
        except (OSError, ValueError) as e:
            parser.error(f'--calib-dir: {e}')
    if not Path(args.config).is_file():
        parser.error(f'config: no such file {args.config}')
    if args.checkpoint and not Path(args.checkpoint).is_file():
        parser.error(f'--checkpoint: no such file {args.checkpoint}')
    args.image_array = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if args.image_array is None:
        parser.error(f'--image: cannot read {args.image} as an image')
    return args


def load_model(config: str, checkpoint: str | None) -> TensorModel:
    from mmengine.model import revert_sync_batchnorm

    if checkpoint is None:
        print('No --checkpoint: exporting random weights.', file=sys.stderr)
    model = build_model(config, checkpoint, device='cpu')
    return TensorModel(revert_sync_batchnorm(model)).eval()


def preprocess(model: TensorModel, image, size=None) -> torch.Tensor:
    """Normalised (1, 3, H, W) input with the model's data preprocessor."""
    if size is not None:
        image = cv2.resize(image, (size[1], size[0]))
    chw = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    data = model.model.data_preprocessor(dict(inputs=[chw]), False)
    return data['inputs']


def int8_report(args, model, out, session, checks, shape) -> Path:
    """Quantize ``out`` to INT8 and print latency, size and agreement."""

    def to_input(bgr: np.ndarray) -> np.ndarray:
        return preprocess(model, bgr).numpy()

    int8_path = out.with_name(out.stem + '.int8.onnx')
    start = time.perf_counter()
    reader = CalibrationReader(args.calib_files, to_input)
    quantize_int8(
        out, int8_path, reader, activation_type=args.int8_activations
    )
    counts = int8_op_count(onnx.load(str(int8_path)))
    print(
        f'quantized {int8_path} on {len(args.calib_files)} calibration '
        f'images in {time.perf_counter() - start:.0f} s: '
        f'{counts["int8_convs"]} INT8 convs, '
        f'{counts["QuantizeLinear"]} QuantizeLinear, '
        f'{args.int8_activations} activations; channel weighting and '
        'classifier kept in float'
    )
    int8 = onnxruntime_session(int8_path, args.threads)
    # The check images, then (up to 8) calibration images.
    reader.rewind()
    calib = [reader.get_next() for _ in range(min(len(reader), 8))]
    inputs = [(x, '') for x in checks] + [
        (torch.from_numpy(item[reader.input_name]), ' (calibration image)')
        for item in calib
    ]
    for x, what in inputs:
        agree = argmax_agreement(run_session(int8, x), run_session(session, x))
        print(
            f'int8 argmax agreement with fp32 at {x.shape[-2]}x'
            f'{x.shape[-1]}{what}: {100 * agree:.2f}%'
        )
    x = preprocess(model, args.image_array, shape)
    run_fp32 = functools.partial(run_session, session, x)
    run_int8 = functools.partial(run_session, int8, x)
    run_fp32(), run_int8()  # warm-up
    fp32_s, int8_s = [], []
    for _ in range(args.runs):
        # Interleaved, so load from other processes hits both alike.
        fp32_s += time_calls(run_fp32, 1, warmup=0)
        int8_s += time_calls(run_int8, 1, warmup=0)
    fp32_ms = 1e3 * statistics.median(fp32_s)
    int8_ms = 1e3 * statistics.median(int8_s)
    print(
        f'int8 latency {shape[0]}x{shape[1]}, batch 1, '
        f'{args.threads or "default"} threads: fp32 {fp32_ms:.1f} ms, '
        f'int8 {int8_ms:.1f} ms ({fp32_ms / int8_ms:.2f}x); size fp32 '
        f'{out.stat().st_size / 2**20:.2f} MiB, int8 '
        f'{int8_path.stat().st_size / 2**20:.2f} MiB'
    )
    return int8_path


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.getLogger('mmengine').setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    image = args.image_array
    try:
        model = load_model(args.config, args.checkpoint)
    except (CheckpointError, CheckpointMismatchError) as e:
        # Names the file, the config and the keys; nothing is written.
        sys.exit(f'error: {e}')
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
        if args.int8:
            print(
                'error: --int8 supports segmentation configs (argmax '
                'agreement); this config is a pose model',
                file=sys.stderr,
            )
            return 2
    out = Path(args.out or Path(args.config).with_suffix('.onnx').name)
    start = time.perf_counter()
    export_onnx(
        model,
        out,
        checks[0],
        dynamic_hw=is_seg,
        opset=args.opset,
        output_name='seg_logits' if is_seg else 'heatmaps',
        exporter=args.exporter,
    )
    print(
        f'exported {out} ({args.exporter}, '
        f'{out.stat().st_size / 2**20:.1f} MiB, opset {args.opset}) in '
        f'{time.perf_counter() - start:.0f} s'
    )
    session = onnxruntime_session(out, args.threads)
    failed = False
    for x in checks:
        size = f'{x.shape[-2]}x{x.shape[-1]}'
        try:
            diff, rel = parity_errors(session, model, x)
        except ParityError as e:
            print(f'parity {size}: FAILED: {e}', file=sys.stderr)
            failed = True
            continue
        ok = diff <= args.atol
        print(
            f'parity {size}: max abs diff {diff:.2e}, relative {rel:.2e} '
            f'({"ok" if ok else "FAILED"})',
            file=sys.stdout if ok else sys.stderr,
        )
        failed = failed or not ok
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
    if args.int8:
        int8_report(args, model, out, session, checks, shape)
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
