"""COCO keypoint AP/AR (mmpose 1.x ``CocoMetric``), via pycocotools."""

import contextlib
import io
import json
import os
import os.path as osp
import tempfile
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmseg.registry import METRICS

from ..functional import oks_nms

STATS_NAMES = (
    'AP',
    'AP .5',
    'AP .75',
    'AP (M)',
    'AP (L)',
    'AR',
    'AR .5',
    'AR .75',
    'AR (M)',
    'AR (L)',
)


def to_numpy(value: Any) -> np.ndarray:
    """Convert a tensor, array or sequence to a numpy array."""
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _import_pycocotools() -> tuple[type, type]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            'CocoMetric needs pycocotools: pip install pycocotools'
        ) from e
    return COCO, COCOeval


def _box_area_cocoeval(cocoeval_cls: type) -> type:
    """COCOeval with the OKS scale taken from the ground-truth box.

    Mirrors xtcocotools' ``use_area=False``: the scale is
    ``0.53 * w * h`` of the ground-truth box instead of its ``area``
    (the area ranges of AP (M)/(L) still use ``area``).
    """

    class BoxAreaCOCOeval(cocoeval_cls):
        def computeOks(self, imgId, catId):  # noqa: N802 (pycocotools API)
            p = self.params
            gts = self._gts[imgId, catId]
            dts = self._dts[imgId, catId]
            inds = np.argsort([-d['score'] for d in dts], kind='mergesort')
            dts = [dts[i] for i in inds][: p.maxDets[-1]]
            if len(gts) == 0 or len(dts) == 0:
                return []
            variances = (np.asarray(p.kpt_oks_sigmas) * 2) ** 2
            ious = np.zeros((len(dts), len(gts)))
            for j, gt in enumerate(gts):
                g = np.array(gt['keypoints'], dtype=np.float64)
                xg, yg, vg = g[0::3], g[1::3], g[2::3]
                x, y, w, h = gt['bbox']
                scale = 0.53 * w * h + np.spacing(1)
                for i, dt in enumerate(dts):
                    d = np.array(dt['keypoints'], dtype=np.float64)
                    xd, yd = d[0::3], d[1::3]
                    if np.count_nonzero(vg > 0) > 0:
                        dx, dy = xd - xg, yd - yg
                    else:
                        # distance to the doubled box, as pycocotools
                        z = np.zeros_like(xd)
                        dx = np.maximum(z, x - w - xd) + np.maximum(
                            z, xd - (x + 2 * w)
                        )
                        dy = np.maximum(z, y - h - yd) + np.maximum(
                            z, yd - (y + 2 * h)
                        )
                    e = (dx**2 + dy**2) / variances / scale / 2
                    if np.count_nonzero(vg > 0) > 0:
                        e = e[vg > 0]
                    ious[i, j] = np.sum(np.exp(-e)) / e.shape[0]
            return ious

    return BoxAreaCOCOeval


@METRICS.register_module()
class CocoMetric(BaseMetric):
    """COCO keypoint AP/AR for top-down predictions (mmpose 1.x names).

    Predictions are grouped per image, rescored, filtered with OKS-NMS,
    written as a COCO results json (``{outfile_prefix}.keypoints.json``)
    and evaluated with pycocotools' ``COCOeval(iouType='keypoints')`` using
    the dataset's OKS sigmas (``dataset_meta['sigmas']``; COCO-17's when
    the metric has no dataset meta).

    Each data sample (a ``PoseDataSample`` as a dict) must hold
    ``pred_instances`` with ``keypoints`` (N, K, 2) in original image
    coordinates, ``keypoint_scores`` (N, K) and ``bbox_scores`` (N,), and
    optionally ``areas`` (N,) (the area used by OKS-NMS; otherwise the
    product of ``gt_instances.bbox_scales`` or the keypoints' extent), plus
    metainfo ``img_id``, ``id`` and optionally ``category_id`` (1).

    Args:
        ann_file (str): COCO person-keypoints json with the ground truth.
        use_area (bool): Scale OKS by the annotations' ``area``; if False,
            by ``0.53 * w * h`` of the ground-truth box (xtcocotools'
            behaviour, for datasets without ``area``). Default: True.
        score_mode (str): Instance score: ``'bbox'`` (the box score) or
            ``'bbox_keypoint'`` (box score times the mean of the keypoint
            scores above ``keypoint_score_thr``). Default:
            ``'bbox_keypoint'``.
        keypoint_score_thr (float): See ``score_mode``. Default: 0.2.
        nms_mode (str): ``'oks_nms'`` or ``'none'``. Default: ``'oks_nms'``.
        nms_thr (float): OKS-NMS threshold; instances with a lower OKS to a
            better one are kept. Default: 0.9.
        format_only (bool): Only write the results json (needs
            ``outfile_prefix``), e.g. for test-dev. Default: False.
        outfile_prefix (str, optional): Prefix of the results json, e.g.
            ``'work_dirs/x/results'``; a temporary folder when None.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Default: ``'cpu'``.
        prefix (str, optional): Metric-name prefix. Default: ``'coco'``.
    """

    default_prefix: str | None = 'coco'
    SCORE_MODES = ('bbox', 'bbox_keypoint')
    NMS_MODES = ('oks_nms', 'none')

    def __init__(
        self,
        ann_file: str,
        use_area: bool = True,
        score_mode: str = 'bbox_keypoint',
        keypoint_score_thr: float = 0.2,
        nms_mode: str = 'oks_nms',
        nms_thr: float = 0.9,
        format_only: bool = False,
        outfile_prefix: str | None = None,
        collect_device: str = 'cpu',
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        name = type(self).__name__
        if score_mode not in self.SCORE_MODES:
            raise ValueError(
                f'{name}: score_mode must be one of {self.SCORE_MODES}, got '
                f'{score_mode!r}'
            )
        if nms_mode not in self.NMS_MODES:
            raise ValueError(
                f'{name}: nms_mode must be one of {self.NMS_MODES}, got '
                f'{nms_mode!r}'
            )
        if format_only and outfile_prefix is None:
            raise ValueError(
                f'{name}: format_only=True needs outfile_prefix (otherwise '
                'the results would go to a deleted temporary folder)'
            )
        if not ann_file or not osp.isfile(ann_file):
            raise FileNotFoundError(
                f'{name}: annotation file not found: {ann_file!r}'
            )
        coco_cls, self._cocoeval_cls = _import_pycocotools()
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco = coco_cls(ann_file)
        if not format_only and 'annotations' not in self.coco.dataset:
            raise ValueError(
                f'{name}: {ann_file} has no "annotations"; ground truth is '
                'needed unless format_only=True'
            )
        self.ann_file = ann_file
        self.use_area = use_area
        self.score_mode = score_mode
        self.keypoint_score_thr = keypoint_score_thr
        self.nms_mode = nms_mode
        self.nms_thr = nms_thr
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Store the predictions of one batch.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): ``PoseDataSample.to_dict()``
                outputs of the model.
        """
        for sample in data_samples:
            pred = sample.get('pred_instances')
            if pred is None:
                raise ValueError(
                    f'{type(self).__name__}: data sample has no '
                    f'pred_instances (keys: {sorted(sample)})'
                )
            for key in ('img_id', 'id'):
                if key not in sample:
                    raise ValueError(
                        f'{type(self).__name__}: data sample has no '
                        f'metainfo {key!r} (keys: {sorted(sample)})'
                    )
            keypoints = to_numpy(pred['keypoints']).astype(np.float64)
            if keypoints.ndim == 2:
                keypoints = keypoints[None]
            num = keypoints.shape[0]
            scores = to_numpy(pred['keypoint_scores']).astype(np.float64)
            scores = scores.reshape(num, -1)
            if 'bbox_scores' in pred:
                bbox_scores = to_numpy(pred['bbox_scores']).reshape(num)
            else:
                bbox_scores = np.ones(num)
            result = dict(
                id=sample['id'],
                img_id=sample['img_id'],
                category_id=sample.get('category_id', 1),
                keypoints=keypoints,
                keypoint_scores=scores,
                bbox_scores=bbox_scores.astype(np.float64),
            )
            gt = sample.get('gt_instances', {})
            if 'areas' in pred:
                result['areas'] = to_numpy(pred['areas']).reshape(num)
            elif 'bbox_scales' in gt:
                result['areas'] = np.prod(to_numpy(gt['bbox_scales']), -1)
            self.results.append(result)

    def _meta(self) -> dict:
        if self.dataset_meta:
            return self.dataset_meta
        from litehrnet_seg.datasets.coco_keypoint_dataset import (
            COCO_METAINFO,
        )

        return COCO_METAINFO

    def _instances_per_image(self, results: list) -> dict:
        """Group per image; drop duplicate ids (distributed padding)."""
        per_img: dict = defaultdict(dict)
        for result in results:
            for i in range(len(result['bbox_scores'])):
                kpts = result['keypoints'][i]
                if 'areas' in result:
                    area = float(result['areas'][i])
                else:
                    extent = kpts.max(0) - kpts.min(0)
                    area = float(extent[0] * extent[1])
                key = (result['id'], i)
                per_img[result['img_id']].setdefault(
                    key,
                    dict(
                        id=result['id'],
                        img_id=result['img_id'],
                        category_id=result['category_id'],
                        keypoints=kpts,
                        keypoint_scores=result['keypoint_scores'][i],
                        bbox_score=float(result['bbox_scores'][i]),
                        area=area,
                    ),
                )
        return {
            img_id: [insts[k] for k in sorted(insts)]
            for img_id, insts in per_img.items()
        }

    def _score(self, inst: dict) -> float:
        if self.score_mode == 'bbox':
            return inst['bbox_score']
        kpt_scores = inst['keypoint_scores']
        valid = kpt_scores > self.keypoint_score_thr
        mean = float(kpt_scores[valid].mean()) if valid.any() else 0.0
        return inst['bbox_score'] * mean

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Rescore, NMS, write the results json and run COCOeval.

        Args:
            results (list): What :meth:`process` stored.

        Returns:
            dict[str, float]: 'AP', 'AP .5', 'AP .75', 'AP (M)', 'AP (L)',
            'AR', 'AR .5', 'AR .75', 'AR (M)', 'AR (L)' (empty with
            ``format_only``).
        """
        name = type(self).__name__
        logger = MMLogger.get_current_instance()
        if not results:
            raise ValueError(
                f'{name}: no predictions to evaluate (the dataloader was '
                'empty, or the model returned no pred_instances)'
            )
        meta = self._meta()
        sigmas = np.asarray(meta['sigmas'], dtype=np.float64)
        num_kpts = results[0]['keypoints'].shape[1]
        if num_kpts != len(sigmas):
            raise ValueError(
                f'{name}: predictions have {num_kpts} keypoints but the '
                f'dataset metainfo has {len(sigmas)} sigmas'
            )

        kept = []
        for instances in self._instances_per_image(results).values():
            for inst in instances:
                inst['score'] = self._score(inst)
                inst['keypoints'] = np.concatenate(
                    [inst['keypoints'], inst['keypoint_scores'][:, None]], 1
                )
            if self.nms_mode == 'oks_nms':
                keep = oks_nms(instances, self.nms_thr, sigmas=sigmas)
                instances = [instances[i] for i in keep]
            kept.extend(instances)

        coco_results = [
            dict(
                image_id=inst['img_id'],
                category_id=inst['category_id'],
                keypoints=inst['keypoints'].reshape(-1).tolist(),
                score=float(inst['score']),
            )
            for inst in kept
        ]
        with contextlib.ExitStack() as stack:
            if self.outfile_prefix is None:
                tmp_dir = stack.enter_context(tempfile.TemporaryDirectory())
                outfile_prefix = osp.join(tmp_dir, 'results')
            else:
                outfile_prefix = self.outfile_prefix
                parent = osp.dirname(outfile_prefix)
                if parent:
                    os.makedirs(parent, exist_ok=True)
            res_file = f'{outfile_prefix}.keypoints.json'
            with open(res_file, 'w') as f:
                json.dump(coco_results, f)
            if self.format_only:
                logger.info(f'{name}: results written to {res_file}')
                return {}
            stats = self._coco_eval(res_file, coco_results, sigmas, logger)
        return OrderedDict(
            (key, float(value))
            for key, value in zip(STATS_NAMES, stats, strict=True)
        )

    def _coco_eval(
        self,
        res_file: str,
        coco_results: list[dict],
        sigmas: np.ndarray,
        logger: MMLogger,
    ) -> np.ndarray:
        """Run pycocotools' keypoint evaluation on ``res_file``."""
        name = type(self).__name__
        gt_img_ids = set(self.coco.getImgIds())
        unknown = sorted(
            {r['image_id'] for r in coco_results} - gt_img_ids, key=str
        )
        if unknown:
            raise ValueError(
                f'{name}: predictions for image ids not in {self.ann_file}: '
                f'{unknown[:10]}'
            )
        cocoeval_cls = self._cocoeval_cls
        if not self.use_area:
            cocoeval_cls = _box_area_cocoeval(cocoeval_cls)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            coco_det = self.coco.loadRes(res_file)
            coco_eval = cocoeval_cls(self.coco, coco_det, 'keypoints')
            coco_eval.params.kpt_oks_sigmas = sigmas
            coco_eval.params.useSegm = None
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        text = out.getvalue()
        summary = text[text.find(' Average Precision') :].rstrip()
        logger.info(f'{name} (pycocotools):\n{summary}')
        return coco_eval.stats
