"""MPII PCKh (mmpose 1.x ``MpiiPCKAccuracy``)."""

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS

from .coco_keypoint_metric import to_numpy

# Joint groups reported by mmpose / the official MPII evaluation.
GROUPS = (
    ('Head', ('head_top',)),
    ('Shoulder', ('left_shoulder', 'right_shoulder')),
    ('Elbow', ('left_elbow', 'right_elbow')),
    ('Wrist', ('left_wrist', 'right_wrist')),
    ('Hip', ('left_hip', 'right_hip')),
    ('Knee', ('left_knee', 'right_knee')),
    ('Ankle', ('left_ankle', 'right_ankle')),
)
# Left out of the mean, as in the official protocol.
EXCLUDED_FROM_MEAN = ('pelvis', 'thorax')


@METRICS.register_module()
class MpiiPCKAccuracy(BaseMetric):
    """PCKh on MPII: a joint is correct when its distance to the ground
    truth is at most ``thr`` times the person's head size.

    Only joints visible in the ground truth count. Reports, in percent:
    the mmpose groups ``Head``, ``Shoulder``, ``Elbow``, ``Wrist``,
    ``Hip``, ``Knee``, ``Ankle`` (mean of left and right), ``PCKh`` (all
    joints but pelvis and thorax, pooled, i.e. weighted by their visible
    counts), ``PCKh@0.1`` (the same at threshold 0.1) and each of the 16
    joints under its name (``right_ankle``, ...; NaN when never visible).

    Predictions and ground truth must be in the same pixel frame
    (:class:`~litehrnet_seg.datasets.MpiiDataset` makes both 0-based, so
    no ``+1`` is applied here, unlike mmpose 1.x which keeps 1-based
    ground truth). Distances equal to the threshold count as correct, as
    in the official evaluation.

    Each data sample (a ``PoseDataSample`` as a dict) needs
    ``pred_instances.keypoints`` (1, K, 2), ``gt_instances.keypoints``
    (1, K, 2), ``gt_instances.keypoints_visible`` (1, K) and ``head_size``
    (metainfo, or in ``gt_instances``), which ``MpiiDataset`` sets from
    ``headbox_file``.

    Args:
        thr (float): PCKh threshold. Default: 0.5.
        norm_item (str): ``'head'`` (PCKh, needs ``head_size``) or
            ``'bbox'`` (PCK normalised by the longest side of the ground
            truth box, for data without head boxes; keys ``PCK``,
            ``PCK@0.1`` instead of ``PCKh``, ``PCKh@0.1``).
        collect_device (str): ``'cpu'`` or ``'gpu'``. Default: ``'cpu'``.
        prefix (str, optional): Metric-name prefix; ``'pck'`` when None
            (as mmpose).
    """

    default_prefix: str | None = 'pck'

    def __init__(
        self,
        thr: float = 0.5,
        norm_item: str | Sequence[str] = 'head',
        collect_device: str = 'cpu',
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        items = [norm_item] if isinstance(norm_item, str) else list(norm_item)
        if items not in (['head'], ['bbox']):
            raise ValueError(
                f"{type(self).__name__} supports norm_item='head' or 'bbox', "
                f'got {norm_item!r}'
            )
        self.thr = thr
        self.norm_item = items[0]
        # PCKh with head sizes; plain PCK when normalised by the box.
        self.metric_name = 'PCKh' if self.norm_item == 'head' else 'PCK'

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Store predictions, ground truth and head sizes of one batch.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): ``PoseDataSample.to_dict()``
                outputs of the model.
        """
        name = type(self).__name__
        for sample in data_samples:
            pred = sample.get('pred_instances')
            gt = sample.get('gt_instances')
            if pred is None or gt is None:
                raise ValueError(
                    f'{name}: data sample needs pred_instances and '
                    f'gt_instances (keys: {sorted(sample)})'
                )
            if self.norm_item == 'bbox':
                if 'bboxes' not in gt:
                    raise ValueError(
                        f"{name}(norm_item='bbox'): data sample has no "
                        'gt_instances.bboxes'
                    )
                # Longest side of the ground-truth box (mmpose's 'bbox').
                boxes = to_numpy(gt['bboxes']).reshape(-1, 4)
                head_size = np.max(boxes[:, 2:] - boxes[:, :2], axis=1)
            else:
                head_size = sample.get('head_size', gt.get('head_size'))
            if head_size is None:
                raise ValueError(
                    f'{name}: data sample has no head_size; build '
                    'MpiiDataset with headbox_file=.../mpii_gt_val.mat'
                )
            pred_kpts = to_numpy(pred['keypoints']).astype(np.float64)
            gt_kpts = to_numpy(gt['keypoints']).astype(np.float64)
            num, num_kpts = gt_kpts.shape[:2]
            visible = to_numpy(gt['keypoints_visible']).reshape(num, num_kpts)
            self.results.append(
                dict(
                    pred=pred_kpts.reshape(num, num_kpts, 2),
                    gt=gt_kpts,
                    mask=visible > 0,
                    head_size=np.broadcast_to(
                        to_numpy(head_size).astype(np.float64).reshape(-1),
                        (num,),
                    ).copy(),
                )
            )

    def _keypoint_names(self, num_kpts: int) -> list[str]:
        if self.dataset_meta and 'keypoint_names' in self.dataset_meta:
            names = list(self.dataset_meta['keypoint_names'])
        else:
            from litehrnet_seg.datasets.mpii_keypoint_dataset import (
                MPII_METAINFO,
            )

            names = list(MPII_METAINFO['keypoint_names'])
        needed = {n for _, group in GROUPS for n in group}
        needed |= set(EXCLUDED_FROM_MEAN)
        if len(names) != num_kpts or not needed <= set(names):
            raise ValueError(
                f'{type(self).__name__} needs the 16 MPII joints; got '
                f'{num_kpts} keypoints named {names}'
            )
        return names

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Compute PCKh from the stored results.

        Args:
            results (list): What :meth:`process` stored.

        Returns:
            dict[str, float]: See the class docstring.
        """
        if not results:
            raise ValueError(f'{type(self).__name__}: no predictions')
        pred = np.concatenate([r['pred'] for r in results])
        gt = np.concatenate([r['gt'] for r in results])
        head = np.concatenate([r['head_size'] for r in results])
        # A person without a usable head size cannot be scored.
        mask = np.concatenate([r['mask'] for r in results])
        mask &= (head > 0)[:, None]
        names = self._keypoint_names(gt.shape[1])

        dist = (
            np.linalg.norm(pred - gt, axis=-1)
            / np.where(head > 0, head, 1.0)[:, None]
        )
        count = mask.sum(0)
        in_mean = np.array([n not in EXCLUDED_FROM_MEAN for n in names])

        def per_joint(thr: float) -> np.ndarray:
            correct = ((dist <= thr) & mask).sum(0)
            with np.errstate(divide='ignore', invalid='ignore'):
                return 100.0 * correct / count

        def pooled(thr: float) -> float:
            correct = ((dist <= thr) & mask).sum(0)
            total = count[in_mean].sum()
            if total == 0:
                return float('nan')
            return float(100.0 * correct[in_mean].sum() / total)

        pckh = per_joint(self.thr)
        index = {n: i for i, n in enumerate(names)}
        metrics: OrderedDict[str, float] = OrderedDict()
        for group, joints in GROUPS:
            values = pckh[[index[j] for j in joints]]
            values = values[~np.isnan(values)]
            metrics[group] = float(values.mean()) if values.size else np.nan
        metrics[self.metric_name] = pooled(self.thr)
        metrics[f'{self.metric_name}@0.1'] = pooled(0.1)
        for name, value in zip(names, pckh, strict=True):
            metrics[name] = float(value)
        return metrics
