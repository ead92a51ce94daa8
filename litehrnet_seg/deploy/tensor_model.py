"""Tensor-in, tensor-out view of a segmentor or pose estimator."""

import torch
import torch.nn as nn


class TensorModel(nn.Module):
    """Plain ``forward(images) -> tensor`` view of an mmseg-style model.

    Calls the model's ``mode='tensor'`` forward: segmentation logits at
    stride 4 for an ``EncoderDecoder`` (N, num_classes, ceil(H/4),
    ceil(W/4)), keypoint heatmaps for a ``TopdownPoseEstimator``. Inputs
    are normalised images (the data preprocessor is not part of it), which
    is what benchmarks, FLOP counters and exporters need.

    Args:
        model (nn.Module): A model whose ``forward`` takes
            ``(inputs, data_samples=None, mode='tensor')``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x, mode='tensor')
        # Multi-output heads (e.g. a pose head returning a tuple) give
        # their first output, the prediction.
        return out[0] if isinstance(out, (tuple, list)) else out
