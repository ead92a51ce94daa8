"""Run an inferencer over images or a video, writing each output as soon
as it is ready. A failed batch is retried one image at a time, so only the
bad input fails; failures are named on stderr as they happen."""

import json
import sys
from collections.abc import Iterable
from pathlib import Path

import mmcv
from tqdm import tqdm

from .inputs import InputItem, VideoSource, iter_images


def error_text(error: BaseException) -> str:
    """One-line reason: ``Type: last message line``."""
    lines = str(error).strip().splitlines() or ['']
    return f'{type(error).__name__}: {lines[-1]}'.rstrip(': ')


def run_batches(
    items: Iterable[InputItem], inferencer, handle, batch_size: int, fail
) -> int:
    """Predict items in batches (``inferencer.predict_items``) and hand
    each result to ``handle(item, result)`` at once.

    Args:
        items (Iterable[InputItem]): Inputs; unreadable ones carry
            ``error``.
        inferencer (SegInferencer | PoseInferencer): Predicts.
        handle (Callable): (item, result) -> None; writes the outputs.
        batch_size (int): Items per forward pass.
        fail (Callable): (item, reason) -> None; reports a failure.

    Returns:
        int: How many items were written.
    """
    pending, written = [], 0

    def flush() -> None:
        nonlocal written
        try:
            results = inferencer.predict_items(pending)
            outcomes = list(zip(pending, results, strict=True))
        except Exception:  # alone again: only the culprit fails
            outcomes = []
            for item in pending:
                try:
                    outcomes.append(
                        (item, inferencer.predict_items([item])[0])
                    )
                except Exception as error:
                    fail(item, error_text(error))
        for item, result in outcomes:
            try:
                handle(item, result)
                written += 1
            except Exception as error:
                fail(item, error_text(error))
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
    return written


def write_outputs(out_dir: Path, name: str, outputs: dict, ext: str) -> None:
    """``out_dir/KIND/NAME.EXT`` per output: images (only ``overlays`` in
    ``ext``, the rest png), dicts as json."""
    for kind, value in outputs.items():
        if isinstance(value, dict):
            path = out_dir / kind / f'{name}.json'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value, indent=1))
            continue
        path = (
            out_dir / kind / f'{name}.{ext if kind == "overlays" else "png"}'
        )
        if not mmcv.imwrite(value, str(path)):  # creates the folder
            raise OSError(f'cannot encode {path}')


def process(
    inferencer,
    inputs: list[Path] | VideoSource,
    out_dir: Path,
    batch_size: int = 1,
    ext: str = 'png',
    save_frames: bool = False,
) -> int:
    """Run on image files or a video and write the outputs.

    A video gives ``overlays/VIDEO.mp4`` (``.avi`` for an avi), written
    frame by frame and closed even on Ctrl-C; a failed frame is written
    unchanged so the video keeps its length.

    Args:
        inferencer (SegInferencer | PoseInferencer): Predicts and draws.
        inputs (list[Path] | VideoSource): Image files or an open video
            (closed here).
        out_dir (Path): Output folder.
        batch_size (int): Images per forward pass.
        ext (str): Overlay format, 'png' or 'jpg'.
        save_frames (bool): Video: also write the per-frame files.

    Returns:
        int: Exit status: 0 all written, 1 some failed (listed).
    """
    video = inputs if isinstance(inputs, VideoSource) else None
    total = video.frame_count if video else len(inputs)
    unit = 'frame' if video else 'image'
    bar = tqdm(total=total, unit=unit, file=sys.stderr)
    failures, writer = [], None
    if video:
        suffix = '.avi' if video.path.suffix.lower() == '.avi' else '.mp4'
        out_path = out_dir / 'overlays' / f'{video.path.stem}{suffix}'
        out_path.parent.mkdir(parents=True, exist_ok=True)

    def write_frame(frame) -> None:
        nonlocal writer
        if writer is None:
            shape = (frame.shape[1], frame.shape[0])
            writer = video.writer(out_path, shape)
        writer.write(frame)

    def handle(item: InputItem, result) -> None:
        outputs = inferencer.draw(item.image, result)
        if 'keypoints' in outputs:
            outputs['keypoints']['image'] = item.source
        if not video or save_frames:
            write_outputs(out_dir, item.name, outputs, ext)
        if video:
            write_frame(outputs['overlays'])
        bar.update()

    def fail(item: InputItem, reason: str) -> None:
        failures.append(f'{item.source} ({reason})')
        tqdm.write(f'error: {item.source}: {reason}', file=sys.stderr)
        bar.update()
        if video and writer is not None and item.image is not None:
            writer.write(item.image)

    try:
        items = video if video else iter_images(inputs)
        written = run_batches(items, inferencer, handle, batch_size, fail)
    finally:
        bar.close()
        if video:
            video.close()
        if writer is not None:
            writer.release()
    if video and written + len(failures) == 0:
        failures.append(f'{video.path} (no frame could be decoded)')
    elif writer is not None:
        print(f'video written to {out_path}')
    inputs_word = 'inputs' if unit == 'image' else 'frames'
    line = f'{written} of {written + len(failures)} {inputs_word} written to '
    line += str(out_dir)
    if not failures:
        print(line)
        return 0
    more = len(failures) - 20
    shown = '; '.join(failures[:20]) + (
        f'; and {more} more' if more > 0 else ''
    )
    print(f'{line}; failed: {shown}', file=sys.stderr)
    return 1
