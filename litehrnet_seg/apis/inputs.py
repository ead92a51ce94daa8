"""Inference inputs: image files, folders of images and videos.

Images are decoded by ``mmcv.imread`` (BGR uint8: gray replicated, alpha
dropped, 16-bit scaled to 8, EXIF orientation applied), videos by
``mmcv.VideoReader``. A file that cannot be read is yielded with its error
instead of stopping the run.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import mmcv
import numpy as np

IMAGE_EXTENSIONS = (
    '.bmp .jpeg .jpg .jpe .jp2 .png .pbm .pgm .ppm .pnm .tif .tiff .webp'
).split()
VIDEO_EXTENSIONS = '.avi .m4v .mkv .mov .mp4 .mpeg .mpg .webm .wmv'.split()


class InputError(ValueError):
    """The input as a whole is unusable (missing, empty folder, unknown
    file type, unopenable video)."""


class ImageReadError(OSError):
    """One image cannot be read; the message names it.

    Args:
        source (str): The file that failed.
        reason (str): Why, e.g. ``'empty file (0 bytes)'``.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f'{source}: {reason}')
        self.source = source
        self.reason = reason


@dataclass
class InputItem:
    """One image to run on.

    Args:
        name (str): Output file stem, unique within one input.
        source (str): Its name in messages: the path or ``'VIDEO frame N'``.
        image (np.ndarray, optional): BGR uint8 (H, W, 3); None if unread.
        error (str, optional): Why it could not be read.
    """

    name: str
    source: str
    image: np.ndarray | None = None
    error: str | None = None


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR uint8 (H, W, 3), whatever its format.

    Args:
        path (str | Path): The image file.

    Returns:
        np.ndarray: The image.

    Raises:
        ImageReadError: Missing, empty, not an image or corrupt (named).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(str(path), 'no such file')
    if path.stat().st_size == 0:
        raise ImageReadError(str(path), 'empty file (0 bytes)')
    image = mmcv.imread(str(path))
    if image is None:
        raise ImageReadError(
            str(path),
            'cannot decode image (not an image file, corrupt, or a format '
            'this OpenCV build cannot read)',
        )
    return image


def _natural_key(path: Path) -> list:
    """Sort key that puts ``f2`` before ``f10``."""
    parts = re.split(r'(\d+)', path.name)
    return [int(p) if p.isdigit() else p.lower() for p in parts]


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder`` (not hidden), natural order.

    Raises:
        InputError: ``folder`` holds no image file.
    """
    folder = Path(folder)
    files = [
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith('.')
        and p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not files:
        raise InputError(
            f'input folder {folder} holds no image files (expected files '
            f'ending in {", ".join(IMAGE_EXTENSIONS)})'
        )
    return sorted(files, key=_natural_key)


def output_names(paths: list[Path]) -> list[str]:
    """Unique output stems: ``a.png``, ``a.jpg`` -> ``a_png``, ``a_jpg``."""
    stems = [p.stem for p in paths]
    return [
        f'{p.stem}_{p.suffix[1:]}' if stems.count(p.stem) > 1 else p.stem
        for p in paths
    ]


def resolve_input(path: str | Path) -> tuple[str, list[Path]]:
    """``('images', files)`` or ``('video', [file])`` for an input path.

    Raises:
        InputError: Missing path, empty folder or unknown file type.
    """
    path = Path(path)
    if path.is_dir():
        return 'images', list_images(path)
    if not path.exists():
        raise InputError(f'input {path} does not exist')
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return 'video', [path]
    if suffix in IMAGE_EXTENSIONS:
        return 'images', [path]
    raise InputError(
        f'input {path}: unknown file type {path.suffix!r} (expected an '
        f'image {", ".join(IMAGE_EXTENSIONS)} or a video '
        f'{", ".join(VIDEO_EXTENSIONS)}, or a folder)'
    )


def iter_images(paths: list[Path]) -> Iterator[InputItem]:
    """Read images one at a time; unreadable ones carry their error."""
    for path, name in zip(paths, output_names(paths), strict=True):
        try:
            yield InputItem(name, str(path), image=read_image(path))
        except ImageReadError as error:
            yield InputItem(name, str(path), error=error.reason)


class VideoSource:
    """The frames of a video as :class:`InputItem`, via mmcv's reader.

    Args:
        path (str | Path): The video file.

    Attributes:
        fps (float): Frames per second (25 when the file does not say).
        frame_count (int | None): From the container; None when unknown.

    Raises:
        InputError: The file cannot be opened as a video.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.reader = mmcv.VideoReader(str(self.path))
        if not self.reader.opened:
            raise InputError(
                f'input video {self.path} cannot be opened (corrupt, or a '
                'codec this OpenCV build cannot decode)'
            )
        fps = self.reader.fps
        self.fps = fps if fps and 0 < fps < 1000 else 25.0
        self.frame_count = self.reader.frame_cnt or None

    def __iter__(self) -> Iterator[InputItem]:
        for index, frame in enumerate(self.reader):
            source = f'{self.path} frame {index}'
            yield InputItem(f'{self.path.stem}_{index:06d}', source, frame)

    def writer(self, path: Path, size: tuple[int, int]) -> cv2.VideoWriter:
        """Open an output video at this video's fps: MJPG for ``.avi``,
        mp4v otherwise.

        Args:
            path (Path): Output file (its folder must exist).
            size (tuple[int, int]): Frame (width, height).

        Raises:
            OSError: The writer cannot be opened (names the file).
        """
        codec = 'MJPG' if path.suffix.lower() == '.avi' else 'mp4v'
        fourcc = cv2.VideoWriter_fourcc(*codec)
        writer = cv2.VideoWriter(str(path), fourcc, self.fps, size)
        if not writer.isOpened():
            raise OSError(f'cannot open video writer for {path} ({codec})')
        return writer

    def close(self) -> None:
        """Release the capture."""
        self.reader.vcap.release()
