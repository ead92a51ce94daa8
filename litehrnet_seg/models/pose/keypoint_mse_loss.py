"""MSE loss on heatmaps with per-keypoint target weights."""

import torch
import torch.nn as nn
from mmseg.registry import MODELS


@MODELS.register_module()
class KeypointMSELoss(nn.Module):
    """Mean squared error between predicted and target heatmaps.

    As mmpose 1.x's ``KeypointMSELoss`` (SimpleBaselines,
    https://arxiv.org/abs/1804.06208): the squared error of each keypoint's
    heatmap is multiplied by its target weight (0 for keypoints that are
    unlabelled or outside the crop), then averaged.

    Args:
        use_target_weight (bool): Weight keypoints by ``target_weights``.
            Defaults to True.
        loss_weight (float): Scale of the loss. Defaults to 1.0.
    """

    def __init__(
        self, use_target_weight: bool = True, loss_weight: float = 1.0
    ) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight
        self.loss_weight = loss_weight

    def forward(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        target_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Compute the loss.

        Args:
            output (Tensor): Predicted heatmaps (B, K, H, W).
            target (Tensor): Target heatmaps (B, K, H, W).
            target_weights (Tensor, optional): Weights (B, K).

        Returns:
            Tensor: The scalar loss.
        """
        if output.shape != target.shape:
            raise ValueError(
                f'heatmap shapes differ: prediction '
                f'{tuple(output.shape)} vs target '
                f'{tuple(target.shape)}'
            )
        loss = (output - target).pow(2)
        if self.use_target_weight and target_weights is not None:
            loss = loss * target_weights[:, :, None, None]
        return loss.mean() * self.loss_weight
