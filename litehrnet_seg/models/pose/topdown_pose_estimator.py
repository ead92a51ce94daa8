"""Top-down heatmap pose estimator on the shared Lite-HRNet core."""

from collections.abc import Callable

import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData, PixelData
from mmseg.registry import MODELS


@MODELS.register_module()
class TopdownPoseEstimator(BaseModel):
    """Person crop -> backbone -> heatmap head -> keypoints.

    Same structure and state-dict layout as mmpose 1.x's
    ``TopdownPoseEstimator`` (``backbone.*``, ``head.final_layer.*``);
    official Lite-HRNet checkpoints (``keypoint_head.*``) load through
    :func:`litehrnet_seg.checkpoint.load_checkpoint`, which renames them.
    Lives in mmseg's registry so ``tools/train.py`` / ``tools/test.py``
    run pose configs unchanged. Paper: https://arxiv.org/abs/2104.06403.

    Args:
        backbone (dict): Backbone config, e.g. ``LiteHRNet`` with
            ``out_indices=(0, )`` (the stride-4 IterativeHead output).
        head (dict): Head config (``HeatmapHead``).
        test_cfg (dict, optional): ``flip_test`` (bool, default True),
            ``shift_heatmap`` (bool, default True), ``output_heatmaps``
            (bool, default False).
        data_preprocessor (dict, optional): e.g. ``ImgDataPreprocessor``
            with mean/std and ``bgr_to_rgb=True``.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(
        self,
        backbone: dict,
        head: dict,
        test_cfg: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg
        )
        self.backbone = MODELS.build(backbone)
        self.head = MODELS.build(head)
        self.test_cfg = dict(test_cfg or {})

    def extract_feat(self, inputs: torch.Tensor) -> tuple[torch.Tensor]:
        return self.backbone(inputs)

    def forward(
        self,
        inputs: torch.Tensor,
        data_samples: list | None = None,
        mode: str = 'tensor',
    ):
        """mmengine's three modes.

        Args:
            inputs (Tensor): Normalised crops (B, 3, H, W).
            data_samples (list[PoseDataSample], optional): Targets
                ('loss') or crop metainfo ('predict').
            mode (str): 'loss' -> dict of losses, 'predict' -> data samples
                with ``pred_instances``, 'tensor' -> heatmaps.
        """
        if mode == 'loss':
            return self.head.loss(self.extract_feat(inputs), data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.head(self.extract_feat(inputs))
        raise ValueError(
            f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}"
        )

    def predict(self, inputs: torch.Tensor, data_samples: list) -> list:
        """Keypoints in the original images, written into the samples."""
        return predict_topdown(
            self.extract_feat, self.head, inputs, data_samples, self.test_cfg
        )


def predict_topdown(
    extract_feat: Callable,
    head: torch.nn.Module,
    inputs: torch.Tensor,
    data_samples: list,
    test_cfg: dict,
) -> list:
    """Top-down prediction shared by the pose and multi-task models.

    Args:
        extract_feat (Callable): Images -> backbone features.
        head (HeatmapHead): The heatmap head.
        inputs (Tensor): Normalised crops (B, 3, H, W).
        data_samples (list[PoseDataSample]): Crop metainfo; receive
            ``pred_instances`` (and ``pred_fields`` when
            ``test_cfg['output_heatmaps']``).
        test_cfg (dict): ``flip_test``, ``shift_heatmap``,
            ``output_heatmaps``.

    Returns:
        list[PoseDataSample]: ``data_samples`` with predictions.
    """
    feats = extract_feat(inputs)
    flip_feats = None
    if test_cfg.get('flip_test', True):
        flip_feats = extract_feat(inputs.flip(-1))
    instances, heatmaps = head.predict(
        feats, data_samples, flip_feats, test_cfg.get('shift_heatmap', True)
    )
    for sample, pred, hm in zip(
        data_samples, instances, heatmaps, strict=True
    ):
        meta = sample.metainfo
        gt = sample.get('gt_instances', InstanceData())
        scale = np.asarray(meta['input_scale'], dtype=np.float32)
        pred.bboxes = gt.get('bboxes', np.zeros((1, 4), np.float32))
        pred.bbox_scores = gt.get('bbox_scores', np.ones(1, np.float32))
        pred.areas = np.prod(scale.reshape(-1, 2), axis=1)
        sample.pred_instances = pred
        if test_cfg.get('output_heatmaps', False):
            sample.pred_fields = PixelData(heatmaps=hm)
    return data_samples
