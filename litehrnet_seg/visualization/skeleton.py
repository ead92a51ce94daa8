"""Skeleton overlays for pose predictions."""

from collections.abc import Sequence

import cv2
import numpy as np


def _colour(i: int) -> tuple[int, int, int]:
    """A distinct, bright BGR colour per index (golden-ratio hues)."""
    hue = int((i * 0.618034 % 1.0) * 179)
    hsv = np.uint8([[[hue, 220, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw_skeleton(
    image: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray | None = None,
    skeleton_links: Sequence[Sequence[int]] = (),
    score_thr: float = 0.3,
    radius: int | None = None,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw keypoints and limbs of several people on a copy of ``image``.

    Args:
        image (np.ndarray): BGR image (H, W, 3).
        keypoints (np.ndarray): (N, K, 2) pixel coordinates.
        scores (np.ndarray, optional): (N, K) confidences; keypoints below
            ``score_thr`` (and their limbs) are not drawn.
        skeleton_links (Sequence[Sequence[int]]): Keypoint index pairs.
        score_thr (float): Visibility threshold. Defaults to 0.3.
        radius (int, optional): Keypoint radius; scales with the image
            when None.
        thickness (int, optional): Limb thickness; scales when None.

    Returns:
        np.ndarray: The annotated BGR image.
    """
    canvas = image.copy()
    keypoints = np.asarray(keypoints, dtype=np.float32).reshape(
        -1, np.shape(keypoints)[-2], 2
    )
    if scores is None:
        scores = np.ones(keypoints.shape[:2], dtype=np.float32)
    scores = np.asarray(scores).reshape(keypoints.shape[:2])
    size = max(image.shape[:2])
    radius = radius or max(2, size // 150)
    thickness = thickness or max(1, size // 250)
    for person, person_scores in zip(keypoints, scores, strict=True):
        visible = person_scores >= score_thr
        for i, (a, b) in enumerate(skeleton_links):
            if visible[a] and visible[b]:
                cv2.line(
                    canvas,
                    tuple(int(v) for v in person[a]),
                    tuple(int(v) for v in person[b]),
                    _colour(i),
                    thickness,
                    cv2.LINE_AA,
                )
        for k, point in enumerate(person):
            if visible[k]:
                cv2.circle(
                    canvas,
                    tuple(int(v) for v in point),
                    radius,
                    _colour(k + 7),
                    -1,
                    cv2.LINE_AA,
                )
    return canvas
