"""Inputs for inference: image files, folders of images and videos.

Every image, whatever its file format, comes out as a BGR ``uint8``
(H, W, 3) array, the form the models' test pipelines expect. Files that
cannot be read do not stop a run: they are yielded with an error message
naming the file, so the caller can report them and go on.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = (
    '.bmp',
    '.jpeg',
    '.jpg',
    '.jpe',
    '.jp2',
    '.png',
    '.pbm',
    '.pgm',
    '.ppm',
    '.pnm',
    '.tif',
    '.tiff',
    '.webp',
)
VIDEO_EXTENSIONS = (
    '.avi',
    '.m4v',
    '.mkv',
    '.mov',
    '.mp4',
    '.mpeg',
    '.mpg',
    '.webm',
    '.wmv',
)


class InputError(ValueError):
    """The input path as a whole cannot be used (missing, empty folder,
    unknown file type, unopenable video)."""


class ImageReadError(OSError):
    """One image cannot be read or decoded; the message names it.

    Args:
        source (str): The file (or frame) that failed.
        reason (str): Why, e.g. ``'empty file (0 bytes)'``.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f'{source}: {reason}')
        self.source = source
        self.reason = reason


@dataclass
class InputItem:
    """One image to run inference on.

    Attributes:
        name (str): Output file stem (unique within one input).
        source (str): What to call it in messages: the file path, or
            ``'VIDEO frame N'``.
        image (np.ndarray | None): BGR uint8 (H, W, 3), or None when it
            could not be read.
        error (str | None): Why it could not be read, without the source
            (None when it was read).
    """

    name: str
    source: str
    image: np.ndarray | None = None
    error: str | None = None


def to_bgr_uint8(image: np.ndarray, source: str = 'image') -> np.ndarray:
    """Convert a decoded image array to BGR ``uint8`` (H, W, 3).

    - grayscale (H, W) or (H, W, 1) is replicated to three channels;
    - a fourth (alpha) channel is dropped: the colour is kept as is, not
      blended over a background;
    - 16-bit images are scaled to 8 bits by keeping the high byte
      (``value >> 8``), which maps the full 0..65535 range onto 0..255
      (a 16-bit image that uses only the low values comes out dark);
    - float images are taken as 0..1 when their maximum is <= 1, else as
      0..255, and clipped.

    Args:
        image (np.ndarray): A decoded image, channels in BGR(A) order.
        source (str): Name of the image for error messages.

    Returns:
        np.ndarray: The BGR uint8 (H, W, 3) image.

    Raises:
        ImageReadError: For an unsupported shape or dtype, or an empty
            image.
    """
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ImageReadError(
            source,
            'expected an image of shape (H, W), (H, W, 1), (H, W, 3) or '
            f'(H, W, 4), got {image.shape}',
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageReadError(source, f'empty image {image.shape}')
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.floating):
        scale = 255.0 if np.nanmax(image) <= 1.0 else 1.0
        image = np.nan_to_num(image * scale).clip(0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageReadError(
            source,
            f'unsupported pixel type {image.dtype} (expected 8- or 16-bit '
            'integers or floats)',
        )
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[..., :3]
    return np.ascontiguousarray(image)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR ``uint8`` (H, W, 3), whatever its format.

    Grayscale, RGBA and palette images become 3-channel BGR; 16-bit images
    are scaled to 8 bits with ``>> 8`` (see :func:`to_bgr_uint8`). EXIF
    orientation is applied, as ``mmcv.imread`` does. The file is read as
    bytes first, so paths with non-ASCII characters work too.

    Args:
        path (str | Path): The image file.

    Returns:
        np.ndarray: The image, BGR uint8 (H, W, 3).

    Raises:
        ImageReadError: The file is missing, empty, not an image or
            corrupt; the message names the file and the reason.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(
            str(path), f'cannot read file ({error.strerror or error})'
        ) from error
    if data.size == 0:
        raise ImageReadError(str(path), 'empty file (0 bytes)')
    # ANYDEPTH keeps 16-bit data so the scaling is ours (and documented);
    # COLOR turns gray/alpha/palette images into 3 channels.
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error as error:
        raise ImageReadError(
            str(path), f'cannot decode image ({error.err or error})'
        ) from error
    if image is None:
        raise ImageReadError(
            str(path),
            'cannot decode image (not an image file, corrupt, or a format '
            'this OpenCV build cannot read)',
        )
    return to_bgr_uint8(image, str(path))


def _natural_key(path: Path) -> list:
    """Sort key that puts ``frame2`` before ``frame10``."""
    return [
        int(part) if part.isdigit() else part.lower()
        for part in re.split(r'(\d+)', path.name)
    ]


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_video_file(path: str | Path) -> bool:
    """Whether ``path`` has one of :data:`VIDEO_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder``, in natural order.

    Hidden files (names starting with ``.``, e.g. macOS ``._x.jpg``
    resource forks) and subfolders are skipped.

    Args:
        folder (str | Path): The folder.

    Returns:
        list[Path]: The image files, sorted by name (numbers by value).

    Raises:
        InputError: ``folder`` is not a folder or holds no image file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f'input folder {folder} does not exist')
    files = [
        path
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.startswith('.')
        and is_image_file(path)
    ]
    if not files:
        raise InputError(
            f'input folder {folder} holds no image files (expected files '
            f'ending in {", ".join(IMAGE_EXTENSIONS)})'
        )
    return sorted(files, key=_natural_key)


def output_names(paths: list[Path]) -> list[str]:
    """Unique output stems for ``paths``: the file stem, or stem plus
    extension where two inputs share a stem (``a.png``, ``a.jpg`` ->
    ``a_png``, ``a_jpg``), so no output overwrites another.

    Args:
        paths (list[Path]): Input files.

    Returns:
        list[str]: One stem per path.
    """
    stems = [path.stem for path in paths]
    return [
        f'{path.stem}_{path.suffix.lstrip(".")}'
        if stems.count(path.stem) > 1
        else path.stem
        for path in paths
    ]


def iter_images(paths: list[Path]) -> Iterator[InputItem]:
    """Read images one at a time; unreadable ones carry their error.

    Args:
        paths (list[Path]): Image files.

    Yields:
        InputItem: One per path, in order.
    """
    for path, name in zip(paths, output_names(paths), strict=True):
        try:
            yield InputItem(name, str(path), image=read_image(path))
        except ImageReadError as error:
            yield InputItem(name, str(path), error=error.reason)


class VideoReader:
    """Frames of a video file as :class:`InputItem` (cv2.VideoCapture).

    Args:
        path (str | Path): The video file.

    Attributes:
        fps (float): Frames per second (25 when the file does not say).
        frame_count (int | None): Frame count from the container, None when
            unknown (it can be wrong for some files).

    Raises:
        InputError: The file does not exist or cannot be opened as video.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f'input video {self.path} does not exist')
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise InputError(
                f'input video {self.path} cannot be opened (corrupt, or a '
                'codec this OpenCV build cannot decode)'
            )
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else 25.0
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None

    def __iter__(self) -> Iterator[InputItem]:
        index = 0
        while True:
            ok, frame = self._capture.read()
            if not ok or frame is None:
                return
            source = f'{self.path} frame {index}'
            item = InputItem(f'{self.path.stem}_{index:06d}', source)
            try:
                item.image = to_bgr_uint8(frame, source)
            except ImageReadError as error:
                item.error = error.reason
            yield item
            index += 1

    def close(self) -> None:
        """Release the capture."""
        self._capture.release()

    def __enter__(self) -> 'VideoReader':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def video_writer(
    path: str | Path, fps: float, size: tuple[int, int]
) -> cv2.VideoWriter:
    """Open a video writer: MJPG for ``.avi``, mp4v otherwise.

    Args:
        path (str | Path): Output file (its folder must exist).
        fps (float): Frames per second.
        size (tuple[int, int]): Frame (width, height).

    Returns:
        cv2.VideoWriter: The opened writer.

    Raises:
        OSError: The writer cannot be opened (names the file).
    """
    codec = 'MJPG' if Path(path).suffix.lower() == '.avi' else 'mp4v'
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*codec), fps, size
    )
    if not writer.isOpened():
        raise OSError(
            f'cannot open video writer for {path} (codec {codec}, '
            f'{size[0]}x{size[1]} at {fps:g} fps)'
        )
    return writer
