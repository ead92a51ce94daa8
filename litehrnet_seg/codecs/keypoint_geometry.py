"""Top-down keypoint geometry: boxes, aspect ratio and affine warps.

Follows mmpose 1.x (``mmpose/structures/bbox/transforms.py``) in names,
conventions and numerics:

* boxes are ``center`` (x, y) and ``scale`` (w, h) in pixels;
* :func:`get_warp_matrix` maps the box to the model input with a
  similarity transform; a positive ``rot`` turns the image content
  counter-clockwise on screen.
"""

import math
from collections.abc import Sequence

import numpy as np


def bbox_xyxy2cs(
    bbox: np.ndarray, padding: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Convert ``(x1, y1, x2, y2)`` boxes to center and scale.

    Args:
        bbox (np.ndarray): Boxes in shape (N, 4) or (4,).
        padding (float): Factor multiplied to the box size. Defaults to 1.0.

    Returns:
        tuple:
        - center (np.ndarray): Box centers (x, y) in shape (N, 2) or (2,).
        - scale (np.ndarray): Padded box sizes (w, h) in shape (N, 2) or
          (2,).
    """
    bbox = np.asarray(bbox)
    single = bbox.ndim == 1
    boxes = bbox.reshape(-1, 4)
    center = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    scale = (boxes[:, 2:] - boxes[:, :2]) * padding
    if single:
        return center[0], scale[0]
    return center, scale


def fix_aspect_ratio(scale: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Enlarge box sizes to a fixed ``w / h`` ratio.

    The shorter side (relative to ``aspect_ratio``) is extended; the box
    never shrinks.

    Args:
        scale (np.ndarray): Box sizes (w, h) in shape (N, 2).
        aspect_ratio (float): Target ratio ``w / h``.

    Returns:
        np.ndarray: Box sizes in shape (N, 2) with ``w / h == aspect_ratio``.
    """
    scale = np.asarray(scale)
    w, h = scale[..., :1], scale[..., 1:2]
    wide = w > h * aspect_ratio
    return np.where(
        wide,
        np.concatenate([w, w / aspect_ratio], axis=-1),
        np.concatenate([h * aspect_ratio, h], axis=-1),
    )


def get_warp_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rot: float,
    output_size: Sequence[int],
    shift: Sequence[float] = (0.0, 0.0),
    inv: bool = False,
) -> np.ndarray:
    """Affine matrix that warps a box of the image onto the output size.

    Same transform as mmpose's ``get_warp_matrix``: the box center (moved
    by ``shift * scale``) goes to the output center, the box width
    ``scale[0]`` is resized to the output width (one factor for both axes,
    so ``scale`` should already have the output's aspect ratio), and the
    content is rotated by ``rot`` degrees, counter-clockwise on screen for
    positive values: the box point ``center + (scale[0] / 2) * (sin(rot),
    -cos(rot))`` lands on the top middle of the output.

    Args:
        center (np.ndarray): Box center (x, y) in shape (2,).
        scale (np.ndarray): Box size (w, h) in shape (2,).
        rot (float): Rotation angle in degrees.
        output_size (Sequence[int]): Output size (w, h).
        shift (Sequence[float]): Center shift as a fraction of ``scale``.
            Defaults to (0., 0.).
        inv (bool): If True, return the output -> image matrix instead.
            Defaults to False.

    Returns:
        np.ndarray: The (2, 3) float32 affine matrix.
    """
    assert len(center) == 2 and len(scale) == 2 and len(output_size) == 2
    src_center = np.asarray(center, np.float64) + np.asarray(
        scale, np.float64
    ) * np.asarray(shift, np.float64)
    dst_center = np.array(output_size, np.float64) * 0.5
    ratio = float(output_size[0]) / float(scale[0])
    rad = math.radians(rot)
    cos, sin = math.cos(rad), math.sin(rad)
    # Linear part: undo the rotation, then resize.
    linear = ratio * np.array([[cos, sin], [-sin, cos]])
    if inv:
        linear = np.array([[cos, -sin], [sin, cos]]) / ratio
        src_center, dst_center = dst_center, src_center
    matrix = np.empty((2, 3), np.float64)
    matrix[:, :2] = linear
    matrix[:, 2] = dst_center - linear @ src_center
    return matrix.astype(np.float32)


def affine_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to points.

    Args:
        points (np.ndarray): Points (x, y) in shape (..., 2).
        matrix (np.ndarray): Affine matrix in shape (2, 3).

    Returns:
        np.ndarray: Transformed points in shape (..., 2), with the dtype of
        ``points`` if it is floating, else float32.
    """
    points = np.asarray(points)
    dtype = points.dtype if points.dtype.kind == 'f' else np.float32
    matrix = np.asarray(matrix, np.float64)
    out = points.astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
    return out.astype(dtype)
