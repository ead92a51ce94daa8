"""Heatmap head for top-down pose estimation."""

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from mmseg.registry import MODELS

from ...codecs import MSRAHeatmap, flip_heatmaps


@MODELS.register_module()
class HeatmapHead(BaseModule):
    """1x1 conv from backbone features to one heatmap per keypoint.

    The Lite-HRNet pose head (https://arxiv.org/abs/2104.06403): the
    highest-resolution IterativeHead output (stride 4) goes through one 1x1
    conv. State-dict keys ``final_layer.{weight,bias}`` as mmpose 1.x.

    Args:
        in_channels (int): Channels of the feature map. Defaults to 40.
        out_channels (int): Number of keypoints K. Defaults to 17.
        loss (dict): Loss config. Defaults to ``KeypointMSELoss`` with
            target weights.
        decoder (dict): ``MSRAHeatmap`` codec arguments (input_size,
            heatmap_size, sigma, unbiased, ...), used to decode.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(
        self,
        in_channels: int = 40,
        out_channels: int = 17,
        loss: dict = dict(type='KeypointMSELoss', use_target_weight=True),
        decoder: dict | None = None,
        init_cfg: dict | list | None = dict(
            type='Normal', layer=['Conv2d'], std=0.001, bias=0
        ),
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.out_channels = out_channels
        self.final_layer = nn.Conv2d(in_channels, out_channels, 1)
        self.loss_module = MODELS.build(loss)
        self.decoder = MSRAHeatmap(**decoder) if decoder else None

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Heatmaps (B, K, H, W) from the first (highest-res) feature."""
        return self.final_layer(feats[0])

    def loss(self, feats: Sequence[torch.Tensor], data_samples: list) -> dict:
        """Heatmap MSE loss against the packed targets."""
        pred = self.forward(feats)
        target = torch.stack([s.gt_fields.heatmaps for s in data_samples]).to(
            pred
        )
        weights = torch.cat(
            [
                torch.as_tensor(s.gt_instance_labels.keypoint_weights)
                for s in data_samples
            ]
        ).to(pred)
        return dict(loss_kpt=self.loss_module(pred, target, weights))

    def predict(
        self,
        feats: Sequence[torch.Tensor],
        data_samples: list,
        flip_feats: Sequence[torch.Tensor] | None = None,
        shift_heatmap: bool = True,
    ) -> tuple[list[InstanceData], np.ndarray]:
        """Decode keypoints in the original images.

        Args:
            feats (Sequence[Tensor]): Backbone features.
            data_samples (list[PoseDataSample]): Samples with the crop's
                ``input_center``, ``input_scale`` and ``input_size``.
            flip_feats (Sequence[Tensor], optional): Features of the
                horizontally flipped crops (flip test): their heatmaps are
                flipped back (left/right swapped, shifted one pixel when
                ``shift_heatmap``) and averaged in.
            shift_heatmap (bool): See ``flip_feats``.

        Returns:
            tuple: Per sample an InstanceData with ``keypoints`` (1, K, 2)
            and ``keypoint_scores`` (1, K); and the heatmaps (B, K, H, W).
        """
        if self.decoder is None:
            raise RuntimeError(
                'HeatmapHead needs `decoder` (the codec '
                'settings) to predict keypoints'
            )
        heatmaps = self.forward(feats)
        if flip_feats is not None:
            flip_indices = data_samples[0].metainfo['flip_indices']
            flipped = flip_heatmaps(
                self.forward(flip_feats), flip_indices, shift_heatmap
            )
            heatmaps = (heatmaps + flipped) * 0.5
        heatmaps = heatmaps.detach().float().cpu().numpy()
        results = []
        for hm, sample in zip(heatmaps, data_samples, strict=True):
            keypoints, scores = self.decoder.decode(hm)
            keypoints = self._crop_to_image(keypoints, sample.metainfo)
            results.append(
                InstanceData(keypoints=keypoints, keypoint_scores=scores)
            )
        return results, heatmaps

    @staticmethod
    def _crop_to_image(keypoints: np.ndarray, meta: dict) -> np.ndarray:
        """Input-crop coordinates -> original image (no rotation at test)."""
        size = np.asarray(meta['input_size'], dtype=np.float32)
        center = np.asarray(meta['input_center'], dtype=np.float32)
        scale = np.asarray(meta['input_scale'], dtype=np.float32)
        return keypoints / size * scale + center - 0.5 * scale
