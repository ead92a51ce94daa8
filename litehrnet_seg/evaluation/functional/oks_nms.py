"""Object Keypoint Similarity (OKS) and OKS-based NMS (mmpose 1.x names)."""

from collections.abc import Sequence

import numpy as np

# COCO-17 OKS sigmas, used when none are given (as mmpose does).
# fmt: off
COCO_SIGMAS = np.array([
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
])
# fmt: on


def oks_iou(
    g: np.ndarray,
    d: np.ndarray,
    a_g: float,
    a_d: np.ndarray,
    sigmas: Sequence[float] | np.ndarray | None = None,
    vis_thr: float | None = None,
) -> np.ndarray:
    """OKS between one instance and several others.

    The scale is the mean of the two instances' areas (both are
    predictions here, unlike COCO evaluation which uses the ground truth's).

    Args:
        g (np.ndarray): The reference instance, (K, 3) or (K*3,):
            x, y, score per keypoint.
        d (np.ndarray): The other instances, (N, K, 3) or (N, K*3).
        a_g (float): Area of ``g``.
        a_d (np.ndarray): Areas of ``d``, shape (N,).
        sigmas (array-like, optional): Per-keypoint OKS sigmas, (K,).
            Default: COCO-17's.
        vis_thr (float, optional): If set, only keypoints whose score is
            above it in both instances count. Default: None (all count).

    Returns:
        np.ndarray: (N,) float32 OKS values in [0, 1].
    """
    sigmas = COCO_SIGMAS if sigmas is None else np.asarray(sigmas, float)
    num_kpts = len(sigmas)
    g = np.asarray(g, dtype=np.float64).reshape(num_kpts, 3)
    d = np.asarray(d, dtype=np.float64).reshape(-1, num_kpts, 3)
    a_d = np.asarray(a_d, dtype=np.float64).reshape(-1)
    variances = (sigmas * 2) ** 2
    sq_dist = ((d[..., :2] - g[None, :, :2]) ** 2).sum(-1)  # (N, K)
    scale = (a_g + a_d)[:, None] / 2 + np.spacing(1)
    e = sq_dist / variances[None] / scale / 2
    if vis_thr is None:
        mask = np.ones_like(e, dtype=bool)
    else:
        mask = (g[None, :, 2] > vis_thr) & (d[..., 2] > vis_thr)
    count = mask.sum(1)
    total = (np.exp(-e) * mask).sum(1)
    oks = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return oks.astype(np.float32)


def oks_nms(
    kpts_db: list[dict],
    thr: float,
    sigmas: Sequence[float] | np.ndarray | None = None,
    vis_thr: float | None = None,
    score_per_joint: bool = False,
) -> np.ndarray:
    """Greedy OKS non-maximum suppression over the instances of one image.

    Repeatedly keeps the highest-scoring instance and drops those whose OKS
    with it is above ``thr``.

    Args:
        kpts_db (list[dict]): Instances, each with ``keypoints`` ((K, 3) or
            (K*3,): x, y, score), ``score`` (float, or (K,) when
            ``score_per_joint``) and ``area`` (float).
        thr (float): OKS threshold; instances with OKS <= thr are kept.
        sigmas (array-like, optional): Per-keypoint OKS sigmas. Default:
            COCO-17's.
        vis_thr (float, optional): See :func:`oks_iou`.
        score_per_joint (bool): Whether ``score`` is per keypoint (its mean
            is used). Default: False.

    Returns:
        np.ndarray: Indices (into ``kpts_db``) of the kept instances,
        highest score first.
    """
    if len(kpts_db) == 0:
        return np.zeros(0, dtype=np.int64)
    if score_per_joint:
        scores = np.array([np.mean(k['score']) for k in kpts_db])
    else:
        scores = np.array([float(k['score']) for k in kpts_db])
    kpts = np.array([np.asarray(k['keypoints']).ravel() for k in kpts_db])
    areas = np.array([float(k['area']) for k in kpts_db])

    # Stable sort so that ties keep their input order.
    order = np.argsort(-scores, kind='stable')
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        if rest.size == 0:
            break
        oks = oks_iou(
            kpts[i], kpts[rest], areas[i], areas[rest], sigmas, vis_thr
        )
        order = rest[oks <= thr]
    return np.array(keep, dtype=np.int64)
