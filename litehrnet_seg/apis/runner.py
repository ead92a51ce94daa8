"""Run an inferencer over a folder, an image or a video, writing each
output as soon as it is ready.

A failed batch is retried one image at a time, so one bad input does not
take its batch-mates down; failures are reported on stderr as they happen
and the rest is processed.
"""

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import mmcv
import numpy as np
from tqdm import tqdm

from .inputs import InputItem, VideoSource, iter_images


def error_text(error: BaseException) -> str:
    """One-line reason for a failure: ``Type: last message line``."""
    lines = str(error).strip().splitlines()
    return f'{type(error).__name__}: {lines[-1] if lines else ""}'.rstrip(': ')


class Progress:
    """Progress bar and failures, reported on stderr as they happen.

    Args:
        total (int | None): Number of inputs, None when unknown.
        unit (str): What an input is (``'image'`` or ``'frame'``).
    """

    def __init__(self, total: int | None, unit: str) -> None:
        self.unit = unit
        self.written = 0
        self.failures: list[tuple[str, str]] = []
        self.bar = tqdm(total=total, unit=unit, file=sys.stderr)

    def ok(self) -> None:
        """Count one input as written."""
        self.written += 1
        self.bar.update()

    def fail(self, source: str, reason: str) -> None:
        """Report one failed input now."""
        self.failures.append((source, reason))
        tqdm.write(f'error: {source}: {reason}', file=sys.stderr)
        self.bar.update()

    def summary(self, out_dir: Path) -> int:
        """Print the summary; return the exit status (0 or 1)."""
        self.bar.close()
        total = self.written + len(self.failures)
        inputs = 'inputs' if self.unit == 'image' else f'{self.unit}s'
        line = f'{self.written} of {total} {inputs} written to {out_dir}'
        if not self.failures:
            print(line)
            return 0
        shown = '; '.join(f'{s} ({r})' for s, r in self.failures[:20])
        if len(self.failures) > 20:
            shown += f'; and {len(self.failures) - 20} more'
        print(f'{line}; failed: {shown}', file=sys.stderr)
        return 1


def run_batches(
    items: Iterable[InputItem],
    predict: Callable[[list], list],
    handle: Callable[[InputItem, object], None],
    batch_size: int,
    progress: Progress,
    on_failure: Callable[[InputItem], None] = lambda item: None,
) -> None:
    """Predict items in batches and hand each result over at once.

    Args:
        items (Iterable[InputItem]): Inputs; unreadable ones carry
            ``error``.
        predict (Callable): list of items -> list of results.
        handle (Callable): (item, result) -> None; writes the outputs.
        batch_size (int): Items per ``predict`` call.
        progress (Progress): Counts successes and failures.
        on_failure (Callable): Called with each failed item.
    """
    pending: list[InputItem] = []

    def fail(item: InputItem, reason: str) -> None:
        progress.fail(item.source, reason)
        on_failure(item)

    def flush() -> None:
        try:
            results = predict(pending)
            outcomes = list(zip(pending, results, strict=True))
        except Exception:  # retry alone: name the culprit only
            outcomes = []
            for item in pending:
                try:
                    outcomes.append((item, predict([item])[0]))
                except Exception as error:
                    fail(item, error_text(error))
        for item, result in outcomes:
            try:
                handle(item, result)
            except Exception as error:
                fail(item, error_text(error))
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


def predict_images(inferencer) -> Callable[[list], list]:
    """``inferencer.predict`` on the items' images."""
    return lambda items: inferencer.predict([item.image for item in items])


def write_outputs(out_dir: Path, name: str, outputs: dict, ext: str) -> None:
    """Write ``out_dir/KIND/NAME.EXT`` per output: images (``label_ids``
    always png), dicts as json.

    Raises:
        OSError: A file cannot be written (named).
    """
    for kind, value in outputs.items():
        if isinstance(value, dict):
            path = out_dir / kind / f'{name}.json'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value, indent=1))
            continue
        suffix = ext if kind == 'overlays' else 'png'
        path = out_dir / kind / f'{name}.{suffix}'
        if not mmcv.imwrite(value, str(path)):  # creates the folder
            raise OSError(f'cannot encode {path}')


def process_images(
    inferencer,
    paths: list[Path],
    out_dir: Path,
    batch_size: int = 1,
    ext: str = 'png',
    predict: Callable | None = None,
) -> int:
    """Run on image files, writing each one's outputs when ready.

    Args:
        inferencer (SegInferencer | PoseInferencer): Predicts and draws.
        paths (list[Path]): Image files.
        out_dir (Path): Output folder.
        batch_size (int): Images per forward pass.
        ext (str): Overlay format, 'png' or 'jpg'.
        predict (Callable, optional): list of items -> results; defaults
            to ``inferencer.predict`` on the images.

    Returns:
        int: Exit status, 0 (all written) or 1 (failures listed).
    """
    progress = Progress(len(paths), 'image')

    def handle(item: InputItem, result) -> None:
        outputs = inferencer.draw(item.image, result)
        if 'keypoints' in outputs:
            outputs['keypoints']['image'] = item.source
        write_outputs(out_dir, item.name, outputs, ext)

    run_batches(
        iter_images(paths),
        predict or predict_images(inferencer),
        handle,
        batch_size,
        progress,
    )
    return progress.summary(out_dir)


def process_video(
    inferencer,
    source: VideoSource,
    out_dir: Path,
    batch_size: int = 1,
    ext: str = 'png',
    save_frames: bool = False,
    predict: Callable | None = None,
) -> int:
    """Run on a video, writing ``overlays/VIDEO.mp4`` (``.avi`` for an avi)
    frame by frame; a failed frame is written unchanged, so the video keeps
    its length, and reported. The video is closed even on Ctrl-C.

    Args:
        inferencer (SegInferencer | PoseInferencer): Predicts and draws.
        source (VideoSource): The opened video (closed here).
        out_dir (Path): Output folder.
        batch_size (int): Frames per forward pass.
        ext (str): Per-frame overlay format.
        save_frames (bool): Also write the per-frame files.
        predict (Callable, optional): As in :func:`process_images`.

    Returns:
        int: Exit status, 0 or 1.
    """
    suffix = '.avi' if source.path.suffix.lower() == '.avi' else '.mp4'
    out_path = out_dir / 'overlays' / f'{source.path.stem}{suffix}'
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = None

    def write_frame(frame: np.ndarray) -> None:
        nonlocal writer
        if writer is None:
            size = (frame.shape[1], frame.shape[0])
            writer = source.writer(out_path, size)
        writer.write(frame)

    def handle(item: InputItem, result) -> None:
        outputs = inferencer.draw(item.image, result)
        if save_frames:
            write_outputs(out_dir, item.name, outputs, ext)
        write_frame(outputs['overlays'])

    def on_failure(item: InputItem) -> None:
        if item.image is not None and writer is not None:
            writer.write(item.image)

    progress = Progress(source.frame_count, 'frame')
    try:
        run_batches(
            source,
            predict or predict_images(inferencer),
            handle,
            batch_size,
            progress,
            on_failure,
        )
    finally:
        source.close()
        if writer is not None:
            writer.release()
    if progress.written + len(progress.failures) == 0:
        progress.fail(str(source.path), 'no frame could be decoded')
    elif writer is not None:
        print(f'video written to {out_path}')
    return progress.summary(out_dir)
