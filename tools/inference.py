"""Run a segmentation or pose model on an image, a folder or a video.

    python tools/inference.py CONFIG INPUT --out-dir DIR [--checkpoint CKPT]
        [--task seg|pose] [--device cpu|cuda] [--batch-size N]
        [--slide [--crop-size H W] [--stride H W]] [--opacity 0.5]
        [--overlay-ext png|jpg] [--with-labels] [--save-label-ids]
        [--save-frames] [--bboxes JSON] [--score-thr 0.3]
        [--cfg-options KEY=VALUE ...]

INPUT is an image file, a folder of images (its image files, not
subfolders, in natural name order) or a video file. The task comes from the
config's model type (an mmseg segmentor: seg; TopdownPoseEstimator: pose).

Outputs, named after the input file (DIR/overlays/NAME.png, ...):

- seg: ``masks/`` colour masks (palette of the dataset), ``overlays/``
  image blended with the mask, ``label_ids/`` raw train ids
  (``--save-label-ids``);
- pose: ``overlays/`` skeletons (the whole image is one person unless
  ``--bboxes`` gives boxes), ``keypoints/`` json;
- video: ``overlays/VIDEO.mp4`` (``.avi`` for an avi input); per-frame files
  only with ``--save-frames``.

Each output is written as soon as it is computed. Unreadable files are
reported by name and skipped. Exit status: 0 all inputs written, 1 some
failed (listed at the end), 2 bad arguments or nothing to process.
"""

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import mmcv
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line (exits with 2 on bad options)."""
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 2)[2],
    )
    parser.add_argument('config', help='seg or pose config file')
    parser.add_argument('input', help='image file, folder of images or video')
    parser.add_argument(
        '--out-dir', required=True, help='folder for the outputs'
    )
    parser.add_argument(
        '--checkpoint',
        help='checkpoint file; without one the weights are random (for '
        'smoke tests: the outputs are meaningless)',
    )
    parser.add_argument(
        '--task',
        choices=('seg', 'pose'),
        help='override the task read from the config model type',
    )
    parser.add_argument(
        '--device', default='cpu', help='cpu, cuda or cuda:N (default cpu)'
    )
    parser.add_argument(
        '--batch-size',
        type=int,
        default=1,
        help='seg: images per forward pass (equal-sized ones share it)',
    )
    parser.add_argument(
        '--slide',
        action='store_true',
        help='seg: sliding-window inference, for images larger than the '
        'training crop',
    )
    parser.add_argument(
        '--crop-size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='--slide window (default: the config data_preprocessor size)',
    )
    parser.add_argument(
        '--stride',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='--slide step, at most the window (default: 2/3 of it)',
    )
    parser.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='seg: weight of the mask in the overlay, in (0, 1] (default 0.5)',
    )
    parser.add_argument(
        '--overlay-ext',
        choices=('png', 'jpg'),
        default='png',
        help='overlay image format (default png)',
    )
    parser.add_argument(
        '--with-labels',
        action='store_true',
        help='seg: write class names on the overlay',
    )
    parser.add_argument(
        '--save-label-ids',
        action='store_true',
        help='seg: also write the predicted train ids as a PNG',
    )
    parser.add_argument(
        '--save-frames',
        action='store_true',
        help='video: also write the per-frame files',
    )
    parser.add_argument(
        '--bboxes',
        help='pose: json with person boxes [x1, y1, x2, y2] in pixels: '
        'a list of boxes for every input, or {"file name": [boxes]}',
    )
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.3,
        help='pose: hide keypoints scoring below this (default 0.3)',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, KEY=VALUE',
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if not 0 < args.opacity <= 1:
        parser.error(f'--opacity must be in (0, 1], got {args.opacity}')
    if (args.crop_size or args.stride) and not args.slide:
        parser.error('--crop-size and --stride need --slide')
    for name in ('crop_size', 'stride'):
        value = getattr(args, name)
        if value and min(value) < 1:
            parser.error(f'--{name.replace("_", "-")} must be positive')
    if args.crop_size and args.stride:
        pairs = zip(args.stride, args.crop_size, strict=True)
        if any(s > c for s, c in pairs):
            parser.error(
                f'--stride {args.stride} must not exceed --crop-size '
                f'{args.crop_size} (pixels between windows would get no '
                'prediction)'
            )
    return args


class Progress:
    """Progress bar plus the list of failures, reported as they happen.

    Args:
        total (int | None): Number of inputs, None when unknown.
        unit (str): What an input is ('image' or 'frame').
    """

    def __init__(self, total: int | None, unit: str) -> None:
        from tqdm import tqdm

        self.unit = unit
        self.written = 0
        self.failures: list[tuple[str, str]] = []
        self.bar = tqdm(
            total=total, unit=unit, file=sys.stderr, dynamic_ncols=True
        )

    def ok(self) -> None:
        """Count one input as written."""
        self.written += 1
        self.bar.update()

    def fail(self, source: str, reason: str) -> None:
        """Report one failed input on stderr now and remember it."""
        from tqdm import tqdm

        self.failures.append((source, reason))
        tqdm.write(f'error: {source}: {reason}', file=sys.stderr)
        self.bar.update()

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()

    def summary(self, out_dir: Path) -> int:
        """Print the summary; return the exit status."""
        total = self.written + len(self.failures)
        inputs = f'{self.unit}s' if self.unit != 'image' else 'inputs'
        if not self.failures:
            print(f'{self.written} of {total} {inputs} written to {out_dir}')
            return EXIT_OK
        shown = '; '.join(f'{s} ({r})' for s, r in self.failures[:20])
        more = len(self.failures) - 20
        if more > 0:
            shown += f'; and {more} more'
        print(
            f'{self.written} of {total} {inputs} written to {out_dir}; '
            f'failed: {shown}',
            file=sys.stderr,
        )
        return EXIT_FAILED


def write_image(path: Path, image: np.ndarray) -> None:
    """Write an image (any path characters); raise OSError naming it."""
    # mmcv's imwrite encodes by suffix and creates the folder.
    if not mmcv.imwrite(image, str(path)):
        raise OSError(f'cannot encode {path}')


def _error_text(error: BaseException) -> str:
    """One-line reason for a failure."""
    text = str(error).strip().splitlines()
    return f'{type(error).__name__}: {text[-1] if text else ""}'.rstrip(': ')


def run_items(
    items: Iterable,
    predict: Callable[[list], list],
    handle: Callable,
    batch_size: int,
    progress: Progress,
    on_failure: Callable | None = None,
) -> None:
    """Predict items in batches and hand each result over at once.

    A failed batch is retried one item at a time, so one bad input does
    not take its batch-mates down with it.

    Args:
        items (Iterable[InputItem]): Inputs in order (unreadable ones carry
            ``error``).
        predict (Callable): list of items -> list of results.
        handle (Callable): (item, result) -> None; writes the outputs.
        batch_size (int): Items per ``predict`` call.
        progress (Progress): Where successes and failures are counted.
        on_failure (Callable, optional): Called with each failed item (e.g.
            to keep a video's frame count).
    """
    pending: list = []

    def fail(item, reason: str) -> None:
        progress.fail(item.source, reason)
        if on_failure is not None:
            on_failure(item)

    def flush() -> None:
        try:
            outcomes = list(zip(pending, predict(pending), strict=True))
        except Exception:
            outcomes = []
            for item in pending:
                try:
                    outcomes.append((item, predict([item])[0]))
                except Exception as error:
                    fail(item, _error_text(error))
        for item, result in outcomes:
            try:
                handle(item, result)
            except Exception as error:
                fail(item, _error_text(error))
            else:
                progress.ok()
        pending.clear()

    for item in items:
        if item.error is not None:
            fail(item, item.error)
            continue
        pending.append(item)
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()


def load_bboxes(path: str) -> np.ndarray | dict:
    """Read the ``--bboxes`` json: boxes for every input, or
    {file name: boxes}; boxes are [x1, y1, x2, y2] pixels.

    Args:
        path (str): The json file.

    Returns:
        np.ndarray | dict: (N, 4) boxes, or file name -> (N, 4) boxes.

    Raises:
        ValueError: Missing file, bad json or a box that is not 4 numbers.
    """
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f'--bboxes file {path} does not exist') from None
    except json.JSONDecodeError as error:
        raise ValueError(f'--bboxes file {path}: bad json ({error})') from None

    def check(boxes, where: str) -> np.ndarray:
        array = np.asarray(boxes, dtype=np.float32)
        if array.shape == (4,):  # one box without the outer list
            array = array[None]
        if array.size and (array.ndim != 2 or array.shape[1] != 4):
            raise ValueError(
                f'--bboxes file {path}: {where} should be a list of '
                f'[x1, y1, x2, y2] boxes, got shape {array.shape}'
            )
        array = array.reshape(-1, 4)
        empty = (array[:, 2] <= array[:, 0]) | (array[:, 3] <= array[:, 1])
        if empty.any():
            raise ValueError(
                f'--bboxes file {path}: {where} has an empty box '
                f'{array[empty][0].tolist()} (expected x2 > x1, y2 > y1)'
            )
        return array

    try:
        if isinstance(data, dict):
            return {k: check(v, repr(k)) for k, v in data.items()}
        return check(data, 'the list')
    except (TypeError, ValueError) as error:
        if str(error).startswith('--bboxes'):
            raise
        raise ValueError(
            f'--bboxes file {path}: boxes must be numbers ({error})'
        ) from None


def resolve_input(path: Path) -> tuple[str, list[Path]]:
    """('images', files) or ('video', [file]) for the INPUT argument.

    Raises:
        InputError: Missing path, empty folder or unknown file type.
    """
    from litehrnet_seg.apis.input_sources import (
        IMAGE_EXTENSIONS,
        VIDEO_EXTENSIONS,
        InputError,
        is_image_file,
        is_video_file,
        list_images,
    )

    if path.is_dir():
        return 'images', list_images(path)
    if not path.exists():
        raise InputError(f'input {path} does not exist')
    if is_video_file(path):
        return 'video', [path]
    if is_image_file(path):
        return 'images', [path]
    raise InputError(
        f'input {path}: unknown file type {path.suffix!r} (expected an '
        f'image {", ".join(IMAGE_EXTENSIONS)} or a video '
        f'{", ".join(VIDEO_EXTENSIONS)}, or a folder)'
    )


def select_task(cfg, requested: str | None, config: str) -> str:
    """The task: the config's, or ``--task`` when the config's model
    type is not recognised.

    Raises:
        ValueError: Unknown model type without ``--task``, or ``--task``
            contradicting the model type.
    """
    from litehrnet_seg.apis import task_of_config

    try:
        detected = task_of_config(cfg)
    except ValueError as error:
        if requested is None:
            raise ValueError(f'config {config}: {error}') from None
        return requested
    if requested is not None and requested != detected:
        raise ValueError(
            f'--task {requested} does not fit config {config}: its model '
            f'type {cfg.model.type!r} is a {detected} model'
        )
    return detected


def build_model(args: argparse.Namespace, cfg, task: str):
    """The model for ``task``, with dataset meta and slide mode set."""
    from litehrnet_seg.apis import (
        configure_slide_inference,
        dataset_meta_from_config,
        init_model,
        init_segmentor,
    )

    if task == 'seg':
        model = init_segmentor(cfg, args.checkpoint, args.device)
        if args.slide:
            preprocessor = cfg.model.get('data_preprocessor') or {}
            crop = args.crop_size or preprocessor.get('size')
            if not crop:
                raise ValueError(
                    '--slide: the config data_preprocessor has no size; '
                    'give --crop-size H W'
                )
            configure_slide_inference(model, crop, args.stride)
        return model
    model = init_model(cfg, args.checkpoint, args.device)
    if not model.dataset_meta:
        # Random weights or a bare state dict: the flip test and the
        # skeleton need the dataset's keypoint metainfo.
        model.dataset_meta = dataset_meta_from_config(cfg)
    return model


class SegOutputs:
    """Writes segmentation outputs for one item."""

    def __init__(self, model, args, out_dir: Path) -> None:
        self.model = model
        self.args = args
        self.out_dir = out_dir

    def predict(self, items: list) -> list:
        from litehrnet_seg.apis import inference_segmentor

        images = [item.image for item in items]
        return inference_segmentor(self.model, images, len(images))

    def render(self, item, result, save: bool) -> np.ndarray:
        from litehrnet_seg.apis import label_map, render_segmentation

        mask, overlay = render_segmentation(
            item.image,
            result,
            self.model,
            self.args.opacity,
            self.args.with_labels,
        )
        if save:
            out, name = self.out_dir, item.name
            write_image(out / 'masks' / f'{name}.png', mask)
            ext = self.args.overlay_ext
            write_image(out / 'overlays' / f'{name}.{ext}', overlay)
            if self.args.save_label_ids:
                ids = label_map(result)
                write_image(out / 'label_ids' / f'{name}.png', ids)
        return overlay


class PoseOutputs:
    """Writes pose outputs (skeleton overlay, keypoints json)."""

    def __init__(self, model, args, out_dir: Path, bboxes) -> None:
        self.model = model
        self.args = args
        self.out_dir = out_dir
        self.bboxes = bboxes

    def boxes_for(self, item) -> np.ndarray | None:
        if self.bboxes is None or isinstance(self.bboxes, np.ndarray):
            return self.bboxes
        # Frames are looked up by their video's name.
        path = Path(item.source.split(' frame ')[0])
        for key in (path.name, str(path), path.stem):
            if key in self.bboxes:
                return self.bboxes[key]
        return None

    def predict(self, items: list) -> list:
        from litehrnet_seg.apis import inference_topdown

        results = []
        for item in items:
            boxes = self.boxes_for(item)
            if boxes is not None and len(boxes) == 0:
                results.append([])
            else:
                results.append(
                    inference_topdown(self.model, item.image, boxes)
                )
        return results

    def render(self, item, samples: list, save: bool) -> np.ndarray:
        from litehrnet_seg.visualization import draw_skeleton

        people = []
        overlay = item.image.copy()
        if samples:
            keypoints = np.concatenate(
                [s.pred_instances.keypoints for s in samples]
            )
            scores = np.concatenate(
                [s.pred_instances.keypoint_scores for s in samples]
            )
            links = self.model.dataset_meta.get('skeleton_links', [])
            overlay = draw_skeleton(
                item.image, keypoints, scores, links, self.args.score_thr
            )
            for sample, points, score in zip(
                samples, keypoints, scores, strict=True
            ):
                box = sample.pred_instances.get('bboxes')
                people.append(
                    dict(
                        bbox=np.asarray(box).reshape(-1)[:4].tolist()
                        if box is not None
                        else None,
                        keypoints=points.tolist(),
                        keypoint_scores=score.tolist(),
                    )
                )
        if save:
            out, name = self.out_dir, item.name
            ext = self.args.overlay_ext
            write_image(out / 'overlays' / f'{name}.{ext}', overlay)
            path = out / 'keypoints' / f'{name}.json'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                json.dumps(dict(image=item.source, people=people), indent=1)
            )
        return overlay


def process_images(paths: list[Path], outputs, batch_size: int) -> Progress:
    """Run on image files, writing each image's outputs when ready."""
    from litehrnet_seg.apis.input_sources import iter_images

    progress = Progress(len(paths), 'image')
    try:
        run_items(
            iter_images(paths),
            outputs.predict,
            lambda item, result: outputs.render(item, result, save=True),
            batch_size,
            progress,
        )
    finally:
        progress.close()
    return progress


def process_video(
    reader, outputs, batch_size: int, out_dir: Path, save_frames: bool
) -> Progress:
    """Run on a video, writing an overlay video frame by frame.

    A frame that fails is written unchanged, so the video keeps its length
    and timing; the failure is still reported.

    Args:
        reader (VideoReader): The opened input video (closed here).
        outputs (SegOutputs | PoseOutputs): Predicts and draws.
        batch_size (int): Frames per forward pass.
        out_dir (Path): Output folder.
        save_frames (bool): Also write the per-frame files.
    """
    from litehrnet_seg.apis.input_sources import video_writer

    path = reader.path
    suffix = '.avi' if path.suffix.lower() == '.avi' else '.mp4'
    out_path = out_dir / 'overlays' / f'{path.stem}{suffix}'
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = None

    def write_frame(frame: np.ndarray) -> None:
        nonlocal writer
        if writer is None:
            height, width = frame.shape[:2]
            writer = video_writer(out_path, reader.fps, (width, height))
        writer.write(frame)

    def handle(item, result) -> None:
        write_frame(outputs.render(item, result, save=save_frames))

    def on_failure(item) -> None:
        if item.image is not None:
            try:
                write_frame(item.image)
            except OSError:
                pass  # the writer's error is already this frame's failure

    with reader:
        progress = Progress(reader.frame_count, 'frame')
        try:
            run_items(
                reader,
                outputs.predict,
                handle,
                batch_size,
                progress,
                on_failure,
            )
        finally:
            progress.close()
            # Release even on Ctrl-C: the frames so far stay playable.
            if writer is not None:
                writer.release()
    if progress.written + len(progress.failures) == 0:
        progress.fail(str(path), 'no frame could be decoded')
    elif writer is not None:
        print(f'video written to {out_path}')
    return progress


def setup(args: argparse.Namespace) -> dict:
    """Check the inputs and options before the model loads.

    Returns:
        dict: ``paths`` (inputs), ``reader`` (an open VideoReader for a
        video input, else None), ``cfg``, ``task``, ``bboxes``.

    Raises:
        InputError: Missing or unusable INPUT.
        ValueError: Bad config, checkpoint, device or option combination.
    """
    import torch
    from mmengine.config import Config

    from litehrnet_seg.apis.input_sources import VideoReader

    kind, paths = resolve_input(Path(args.input))
    if not Path(args.config).is_file():
        raise ValueError(f'config {args.config} does not exist')
    try:
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
    except Exception as error:
        raise ValueError(
            f'config {args.config} cannot be read: {_error_text(error)}'
        ) from None
    task = select_task(cfg, args.task, args.config)
    if task == 'pose' and args.slide:
        raise ValueError('--slide is for segmentation, not pose')
    if task == 'seg' and args.bboxes:
        raise ValueError('--bboxes is for pose, not segmentation')
    if args.checkpoint and not Path(args.checkpoint).is_file():
        raise ValueError(f'checkpoint {args.checkpoint} does not exist')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(
            f'--device {args.device}: CUDA is not available (torch '
            f'{torch.__version__}); use --device cpu'
        )
    bboxes = load_bboxes(args.bboxes) if args.bboxes else None
    # Open a video last: a broken one still fails before the model loads.
    reader = VideoReader(paths[0]) if kind == 'video' else None
    return dict(paths=paths, reader=reader, cfg=cfg, task=task, bboxes=bboxes)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (see the module docstring)."""
    args = parse_args(argv)
    # The OpenMMLab libraries' import and deprecation chatter (mmcv-lite,
    # pkg_resources, build_loss) would bury the report.
    warnings.filterwarnings('ignore', message='.*pkg_resources')
    warnings.filterwarnings(
        'ignore', category=UserWarning, module=r'(mmcv|mmengine|mmseg)\.'
    )
    from litehrnet_seg.apis.input_sources import InputError

    try:
        run = setup(args)
    except (InputError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return EXIT_USAGE
    cfg, task, reader = run['cfg'], run['task'], run['reader']
    try:
        if args.checkpoint is None:
            print(
                'warning: no --checkpoint given: the model has RANDOM '
                'weights, its outputs are meaningless (use this only as a '
                'smoke test)',
                file=sys.stderr,
            )
        try:
            model = build_model(args, cfg, task)
        except ValueError as error:  # ours: names the option
            print(f'error: {error}', file=sys.stderr)
            return EXIT_USAGE
        except Exception as error:
            print(
                f'error: cannot build a {task} model from {args.config} '
                f'(model type {cfg.model.get("type")!r}): '
                f'{_error_text(error)}',
                file=sys.stderr,
            )
            return EXIT_USAGE
        out_dir = Path(args.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if task == 'seg':
            outputs = SegOutputs(model, args, out_dir)
        else:
            outputs = PoseOutputs(model, args, out_dir, run['bboxes'])
        batch_size = args.batch_size if task == 'seg' else 1
        paths = run['paths']
        what = 'video' if reader else f'{len(paths)} image(s)'
        print(f'{task} inference on {args.input}: {what}')
        if reader is not None:
            progress = process_video(
                reader, outputs, batch_size, out_dir, args.save_frames
            )
        else:
            progress = process_images(paths, outputs, batch_size)
        return progress.summary(out_dir)
    finally:
        # Early returns must not leave a video capture open.
        if reader is not None:
            reader.close()


if __name__ == '__main__':
    sys.exit(main())
