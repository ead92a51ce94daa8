"""Calibration inputs for static INT8 quantization: real images."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

#: Image suffixes :func:`calibration_images` collects.
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')


def calibration_images(folder: str | os.PathLike) -> list[Path]:
    """The images under a folder, searched recursively, sorted.

    Args:
        folder (str | PathLike): Folder of real images (e.g. a few dozen
            frames of the deployment's camera).

    Returns:
        list[Path]: Image files (suffixes :data:`IMAGE_SUFFIXES`).

    Raises:
        FileNotFoundError: If ``folder`` is not a directory.
        ValueError: If it holds no image.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(
            f'calibration folder {root} does not exist or is not a folder'
        )
    files = sorted(
        p
        for p in root.rglob('*')
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not files:
        raise ValueError(
            f'calibration folder {root} holds no image (expected files '
            f'ending in {", ".join(IMAGE_SUFFIXES)})'
        )
    return files


class CalibrationReader:
    """onnxruntime ``CalibrationDataReader`` over preprocessed images.

    Each image is read as BGR, optionally resized, turned into a network
    input by ``preprocess`` and fed with batch 1 (images of different
    sizes are fine: the graph is dynamic).

    Args:
        files (list[Path]): Images, e.g. from :func:`calibration_images`.
        preprocess (Callable): BGR uint8 (H, W, 3) array -> float32
            (1, 3, H, W) network input (normalisation of the model).
        input_name (str): Name of the graph's input.
        size (tuple[int, int], optional): (H, W) to resize every image
            to; None keeps each image's size.
    """

    def __init__(
        self,
        files: list[Path],
        preprocess: Callable[[np.ndarray], np.ndarray],
        input_name: str = 'input',
        size: tuple[int, int] | None = None,
    ) -> None:
        self.files = list(files)
        self.preprocess = preprocess
        self.input_name = input_name
        self.size = size
        self.rewind()

    def _inputs(self) -> Iterator[dict]:
        for path in self.files:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f'cannot read calibration image {path}')
            if self.size is not None:
                image = cv2.resize(image, (self.size[1], self.size[0]))
            x = np.ascontiguousarray(self.preprocess(image), np.float32)
            yield {self.input_name: x}

    def rewind(self) -> None:
        """Start again from the first image."""
        self._iter = self._inputs()

    def get_next(self) -> dict | None:
        """The next ``{input_name: array}``, None when done."""
        return next(self._iter, None)

    def __len__(self) -> int:
        return len(self.files)
