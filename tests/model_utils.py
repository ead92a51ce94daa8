"""Shared helpers of the deployment tests."""

from pathlib import Path

import cv2
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
SEG_CONFIG = (
    ROOT / 'configs/litehrnet/'
    'fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-128x256.py'
)
FRAME = (
    ROOT / 'tests/data/cityscapes/leftImg8bit/val/frankfurt/'
    'frankfurt_000000_000294_leftImg8bit.png'
)


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Realistic weights and BN statistics, so folding is not a no-op and
    outputs have magnitudes like a trained model's."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            w = torch.randn(m.weight.shape, generator=gen)
            # Gain 0.5 keeps outputs at O(10) through the official
            # fuse, which doubles branch 0 in every module.
            m.weight.data = w * (0.5 / fan_in) ** 0.5
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.running_mean.data = 0.2 * torch.randn(c, generator=gen)
            m.running_var.data = 0.5 + torch.rand(c, generator=gen)
            m.weight.data = 0.5 + torch.rand(c, generator=gen)
            m.bias.data = 0.1 * torch.randn(c, generator=gen)
    return model.eval()


def real_frame(model: nn.Module, size=None) -> torch.Tensor:
    image = cv2.imread(str(FRAME))
    if size is not None:
        image = cv2.resize(image, (size[1], size[0]))
    chw = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    return model.model.data_preprocessor(dict(inputs=[chw]), False)['inputs']
