"""Run a segmentation or pose model on an image, a folder or a video.

    litehrnet-infer CONFIG INPUT --out-dir DIR [--checkpoint CKPT] [...]

(``python tools/inference.py`` is the same; docs/inference.md has it all.)
INPUT is an image, a folder of images or a video; the task comes from the
config's model type. Outputs in DIR, named after the input: seg
``masks/``, ``overlays/``, ``label_ids/`` (``--save-label-ids``); pose
``overlays/`` skeletons, ``keypoints/`` json; a video gives
``overlays/VIDEO.mp4``. The model runs optimised (BN folded, channels_last;
within 1e-4 of eager) unless ``--no-optimize``. Each output is written when
ready. Exit status: 0 all written; 1 some inputs failed (each named on
stderr, the rest processed); 2 bad arguments, checkpoint or input (nothing
written).
"""

import argparse
import sys
import warnings
from pathlib import Path

EXIT_USAGE = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line (exits with 2 on bad options)."""
    from mmengine.config import DictAction

    doc = __doc__.split('\n', 2)
    parser = argparse.ArgumentParser(
        prog='litehrnet-infer',
        description=doc[0],
        epilog=doc[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add('config', help='seg or pose config file')
    add('input', help='image file, folder of images or video')
    add('--out-dir', required=True, help='folder for the outputs')
    add('--checkpoint', help='checkpoint; without one weights are random')
    add('--task', choices=('seg', 'pose'), help='override the config task')
    add('--device', default='cpu', help='cpu, cuda or cuda:N')
    add('--batch-size', type=int, default=1, help='seg: images per pass')
    add('--no-optimize', action='store_true', help='run the eager model')
    add('--compile', action='store_true', help='also torch.compile')
    add('--slide', action='store_true', help='seg: sliding-window mode')
    add('--crop-size', type=int, nargs=2, metavar=('H', 'W'))
    add('--stride', type=int, nargs=2, metavar=('H', 'W'))
    add('--opacity', type=float, default=0.5, help='seg: mask weight')
    add('--overlay-ext', choices=('png', 'jpg'), default='png')
    add('--with-labels', action='store_true', help='seg: class names')
    add('--save-label-ids', action='store_true', help='seg: train ids')
    add('--save-frames', action='store_true', help='video: frame files')
    add('--bboxes', help='pose: json of [x1, y1, x2, y2] person boxes')
    add('--score-thr', type=float, default=0.3, help='pose: hide below')
    add('--cfg-options', nargs='+', action=DictAction, help='KEY=VALUE')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if not 0 < args.opacity <= 1:
        parser.error(f'--opacity must be in (0, 1], got {args.opacity}')
    if (args.crop_size or args.stride) and not args.slide:
        parser.error('--crop-size and --stride need --slide')
    if args.compile and args.no_optimize:
        parser.error('--compile is part of the optimised path')
    if args.crop_size and args.stride:
        if any(
            s > c for s, c in zip(args.stride, args.crop_size, strict=True)
        ):
            parser.error(
                f'--stride {args.stride} must not exceed --crop-size '
                f'{args.crop_size}'
            )
    if Path(args.out_dir).is_file():
        parser.error(f'--out-dir {args.out_dir} is a file, not a folder')
    return args


def task_of_config(cfg, requested: str | None = None) -> str:
    """``'seg'`` (an mmseg segmentor) or ``'pose'`` (a top-down estimator)
    from the config's model type, or ``requested`` for unknown types.

    Raises:
        ValueError: Unknown type without ``requested``, or a contradiction.
    """
    from mmseg.models import BaseSegmentor
    from mmseg.registry import MODELS

    model_type = cfg.model.get('type')
    cls = MODELS.get(model_type) if isinstance(model_type, str) else None
    detected = None
    if cls is not None and issubclass(cls, BaseSegmentor):
        detected = 'seg'
    elif cls is not None and 'TopdownPose' in cls.__name__:
        detected = 'pose'
    if detected is None and requested is None:
        raise ValueError(
            f'cannot tell the task of model type {model_type!r}; choose one '
            'with --task seg|pose (a multi-task checkpoint runs with a '
            'single-task config)'
        )
    if requested and detected and requested != detected:
        raise ValueError(
            f'--task {requested} does not fit model type {model_type!r} '
            f'(a {detected} model)'
        )
    return requested or detected


def build_inferencer(args: argparse.Namespace, task: str):
    """The seg or pose inferencer the options ask for."""
    from litehrnet_seg.apis import PoseInferencer, SegInferencer, load_boxes

    common = dict(
        device=args.device,
        optimize=not args.no_optimize,
        compile=args.compile,
        cfg_options=args.cfg_options,
    )
    if task == 'pose':
        boxes = load_boxes(args.bboxes) if args.bboxes else None
        return PoseInferencer(
            args.config,
            args.checkpoint,
            score_thr=args.score_thr,
            boxes=boxes,
            **common,
        )
    inferencer = SegInferencer(
        args.config,
        args.checkpoint,
        opacity=args.opacity,
        with_labels=args.with_labels,
        save_label_ids=args.save_label_ids,
        **common,
    )
    if args.slide:
        preprocessor = inferencer.cfg.model.get('data_preprocessor') or {}
        crop = args.crop_size or preprocessor.get('size')
        if not crop:
            raise ValueError('--slide: the config has no crop size; give one')
        inferencer.configure_slide(crop, args.stride)
    return inferencer


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    args = parse_args(argv)
    warnings.filterwarnings('ignore', message='.*pkg_resources')
    warnings.filterwarnings(
        'ignore', category=UserWarning, module=r'(mmcv|mmengine|mmseg)\.'
    )
    import torch
    from mmengine.config import Config

    from litehrnet_seg.apis import InputError, VideoSource, resolve_input
    from litehrnet_seg.apis.runner import error_text, process
    from litehrnet_seg.checkpoint import CheckpointError

    video = None
    try:
        kind, paths = resolve_input(args.input)
        if not Path(args.config).is_file():
            raise ValueError(f'config {args.config} does not exist')
        task = task_of_config(Config.fromfile(args.config), args.task)
        if task == 'pose' and args.slide:
            raise ValueError('--slide is for segmentation, not pose')
        if task == 'seg' and args.bboxes:
            raise ValueError('--bboxes is for pose, not segmentation')
        if args.device.startswith('cuda') and not torch.cuda.is_available():
            raise ValueError(f'--device {args.device}: CUDA not available')
        if args.checkpoint is None:
            print(
                'warning: no --checkpoint: the model has RANDOM weights, '
                'its outputs are meaningless (a smoke test only)',
                file=sys.stderr,
            )
        inferencer = build_inferencer(args, task)
        # Opened last: a broken video still fails before anything runs.
        video = VideoSource(paths[0]) if kind == 'video' else None
    except Exception as error:
        # Ours name the file and the problem (CheckpointMismatchError is a
        # ValueError); anything else comes from reading or building.
        ours = (InputError, ValueError, CheckpointError)
        if not isinstance(error, ours):
            error = f'cannot build a model from {args.config}: ' + error_text(
                error
            )
        print(f'error: {error}', file=sys.stderr)
        return EXIT_USAGE
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f'{task} inference on {args.input}')
    return process(
        inferencer,
        video or paths,
        out_dir,
        batch_size=args.batch_size if task == 'seg' else 1,
        ext=args.overlay_ext,
        save_frames=args.save_frames,
    )


if __name__ == '__main__':
    sys.exit(main())
