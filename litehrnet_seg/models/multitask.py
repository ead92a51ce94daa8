"""Joint segmentation + pose training on one Lite-HRNet core.

One ``LiteHRNet`` backbone (https://arxiv.org/abs/2104.06403) feeds an mmseg
segmentation head (``decode_head``, all four IterativeHead outputs) and a
top-down heatmap pose head (``head``, the stride-4 output). Every batch
carries ONE task, recognised from its data samples' type (``SegDataSample``
-> ``'seg'``, ``PoseDataSample`` -> ``'pose'``), so stock ``tools/train.py``
drives it with mmengine's ordinary loops:

- ``MultiTaskDataset`` concatenates one dataset per task;
- ``TaskBatchSampler`` (training) yields batches that come from one task
  each, with per-task batch sizes and an exact, deterministic task ratio
  (smooth weighted round robin);
- ``TaskSequentialBatchSampler`` (validation/test) walks every task's
  dataset once, task after task;
- ``TaskFilteredMetric`` wraps a metric (``IoUMetric``, ``CocoMetric``) so
  that it only sees its task's samples: one evaluator list reports ``mIoU``
  and ``coco/AP`` in the same validation run.

State-dict keys (``backbone.*``, ``decode_head.*``, ``head.*``) are those of
the single-task ``EncoderDecoder`` and ``TopdownPoseEstimator``, so a
multi-task checkpoint loads into either (filtered by prefix).
"""

from collections.abc import Mapping

import torch
from mmengine.config import ConfigDict
from mmengine.model import BaseModel
from mmseg.models.segmentors import BaseSegmentor, EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import add_prefix

from ..structures.task import TASKS, infer_task
from .pose.topdown_pose_estimator import predict_topdown


@MODELS.register_module()
class SegPoseMultiTaskModel(BaseModel):
    """Lite-HRNet core shared by semantic segmentation and top-down pose.

    Attribute names match the single-task models: ``backbone`` and
    ``decode_head`` as mmseg's ``EncoderDecoder``, ``backbone`` and ``head``
    as ``TopdownPoseEstimator``. Segmentation inference reuses mmseg's own
    ``EncoderDecoder`` code (whole/slide inference, ``postprocess_result``)
    so predictions are those of the single-task model with the same weights.
    Paper: https://arxiv.org/abs/2104.06403.

    Args:
        backbone (dict): ``LiteHRNet`` config with ``out_indices=(0, 1, 2,
            3)`` (all four IterativeHead outputs).
        decode_head (dict): mmseg decode head (e.g. ``FCNHead`` with
            ``resize_concat`` over ``in_index=(0, 1, 2, 3)``).
        head (dict): Pose ``HeatmapHead`` (reads ``feats[0]``).
        loss_weights (dict): Task -> weight applied to that task's losses.
            Defaults to 1.0 each.
        train_cfg (dict, optional): Segmentation train config (passed to
            ``decode_head.loss``).
        test_cfg (dict, optional): ``seg=dict(mode='whole')`` (mmseg test
            config) and ``pose=dict(flip_test=True, shift_heatmap=True)``.
        data_preprocessor (dict, optional): ``MultiTaskDataPreprocessor``.
        init_cfg (dict, optional): Initialization config.
    """

    # mmseg's inference path, verbatim (needs test_cfg, decode_head,
    # align_corners, out_channels, extract_feat).
    encode_decode = EncoderDecoder.encode_decode
    whole_inference = EncoderDecoder.whole_inference
    slide_inference = EncoderDecoder.slide_inference
    inference = EncoderDecoder.inference
    postprocess_result = BaseSegmentor.postprocess_result

    def __init__(
        self,
        backbone: dict,
        decode_head: dict,
        head: dict,
        loss_weights: Mapping[str, float] | None = None,
        train_cfg: dict | None = None,
        test_cfg: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg
        )
        self.backbone = MODELS.build(backbone)
        self.decode_head = MODELS.build(decode_head)
        self.head = MODELS.build(head)
        self.align_corners = self.decode_head.align_corners
        self.num_classes = self.decode_head.num_classes
        self.out_channels = self.decode_head.out_channels
        weights = dict(seg=1.0, pose=1.0)
        weights.update(loss_weights or {})
        unknown = set(weights) - set(TASKS)
        if unknown:
            raise ValueError(f'unknown tasks {sorted(unknown)}; use {TASKS}')
        self.loss_weights = weights
        test_cfg = dict(test_cfg or {})
        self.train_cfg = ConfigDict(train_cfg or {})
        # `test_cfg` is the segmentation one, as mmseg's borrowed code reads.
        self.test_cfg = ConfigDict(test_cfg.get('seg', dict(mode='whole')))
        self.pose_test_cfg = dict(test_cfg.get('pose', {}))

    @property
    def with_neck(self) -> bool:
        return False

    @property
    def with_auxiliary_head(self) -> bool:
        return False

    def extract_feat(self, inputs: torch.Tensor) -> tuple[torch.Tensor]:
        """All backbone outputs (IterativeHead, strides 4, 8, 16, 32)."""
        return self.backbone(inputs)

    def forward(
        self,
        inputs: torch.Tensor,
        data_samples: list | None = None,
        mode: str = 'tensor',
        task: str | None = None,
    ):
        """mmengine's three modes, for the task of the batch.

        Args:
            inputs (Tensor): Preprocessed images (B, 3, H, W).
            data_samples (list, optional): ``SegDataSample`` or
                ``PoseDataSample`` objects; they decide the task.
            mode (str): 'loss' -> dict of prefixed, weighted losses
                (``seg.decode.loss_ce``, ``pose.loss_kpt``), 'predict' ->
                data samples with predictions, 'tensor' -> raw head output
                (seg logits or heatmaps).
            task (str, optional): Overrides the task, e.g. for 'tensor'
                without data samples. In 'tensor' mode with neither, a dict
                of both outputs is returned.
        """
        if task is None and data_samples:
            task = infer_task(data_samples)
        if task is not None and task not in TASKS:
            raise ValueError(f'task must be one of {TASKS}, got {task!r}')
        if mode == 'tensor':
            feats = self.extract_feat(inputs)
            outs = {}
            if task in (None, 'seg'):
                outs['seg'] = self.decode_head.forward(feats)
            if task in (None, 'pose'):
                outs['pose'] = self.head.forward(feats)
            return outs[task] if task else outs
        if task is None:
            raise ValueError(f'mode {mode!r} needs data samples or `task`')
        if mode == 'loss':
            return self.loss(inputs, data_samples, task)
        if mode == 'predict':
            if task == 'seg':
                return self.predict_seg(inputs, data_samples)
            return self.predict_pose(inputs, data_samples)
        raise ValueError(
            f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}"
        )

    def loss(
        self, inputs: torch.Tensor, data_samples: list, task: str
    ) -> dict:
        """Losses of one task, prefixed with the task and weighted."""
        feats = self.extract_feat(inputs)
        if task == 'seg':
            losses = add_prefix(
                self.decode_head.loss(feats, data_samples, self.train_cfg),
                'decode',
            )
        else:
            losses = self.head.loss(feats, data_samples)
        weight = self.loss_weights[task]
        if weight != 1.0:
            losses = {
                k: (v * weight if 'loss' in k else v)
                for k, v in losses.items()
            }
        return add_prefix(losses, task)

    def predict_seg(self, inputs: torch.Tensor, data_samples: list) -> list:
        """``EncoderDecoder.predict``: ``pred_sem_seg`` and ``seg_logits``."""
        batch_img_metas = [sample.metainfo for sample in data_samples]
        seg_logits = self.inference(inputs, batch_img_metas)
        results = self.postprocess_result(seg_logits, data_samples)
        for sample in results:
            sample.set_metainfo(dict(task='seg'))
        return results

    def predict_pose(self, inputs: torch.Tensor, data_samples: list) -> list:
        """``TopdownPoseEstimator.predict``: keypoints (flip test)."""
        results = predict_topdown(
            self.extract_feat,
            self.head,
            inputs,
            data_samples,
            self.pose_test_cfg,
        )
        for sample in results:
            sample.set_metainfo(dict(task='pose'))
        return results
