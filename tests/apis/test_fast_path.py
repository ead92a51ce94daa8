"""The optimised inference path (BN folded, channels_last) gives the eager
model's outputs within 1e-4, on the real frame and at an odd size, for the
config's default head and the 320-channel concat head; and the inferencers
use it by default."""

from pathlib import Path

import cv2
import pytest
import torch
import torch.nn as nn

from litehrnet_seg.apis import (
    PoseInferencer,
    SegInferencer,
    optimize_for_inference,
)

ROOT = Path(__file__).resolve().parents[2]
SEG18 = (
    ROOT / 'configs/litehrnet/fcn-concat_litehrnet18_1xb2-300i_cityscapes-'
    'sample-128x256.py'
)
POSE18 = ROOT / (
    'configs/pose/topdown-heatmap_litehrnet18_1xb12-120i_coco-sample-'
    '256x192.py'
)
FRAME = ROOT / (
    'tests/data/cityscapes/leftImg8bit/val/frankfurt/'
    'frankfurt_000000_000294_leftImg8bit.png'
)
PERSON = ROOT / 'tests/data/coco/000000196141.jpg'
BATCH_NORMS = (nn.BatchNorm2d, nn.SyncBatchNorm)
# The former default head: mmseg's FCNHead mixing the 280-channel
# concatenation with a 320-wide 1x1 conv.
HEAD_320 = {
    f'model.decode_head.{key}': value
    for key, value in dict(
        type='FCNHead',
        channels=320,
        num_convs=1,
        kernel_size=1,
        concat_input=False,
    ).items()
}


def unfolded(model: nn.Module) -> list[str]:
    """Names of the BatchNorms left in ``model``."""
    return [n for n, m in model.named_modules() if isinstance(m, BATCH_NORMS)]


def folded(model: nn.Module) -> bool:
    """Every BN that follows a conv is folded: only the default head's BN
    after its sum of upsampled projections (no conv before it) is left."""
    return all(
        name.startswith('decode_head.norm_act') for name in unfolded(model)
    )


def randomise_batch_norms(model: nn.Module) -> None:
    """Non-trivial BN statistics, so folding them is really tested."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, BATCH_NORMS):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator))
            module.running_var.uniform_(0.5, 2.0, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.normal_(0, 0.5, generator=generator)


@pytest.mark.parametrize(
    'cfg_options', [None, HEAD_320], ids=['default-head', '320-head']
)
def test_seg_fast_path_matches_eager(cfg_options):
    torch.manual_seed(0)
    inferencer = SegInferencer(SEG18, optimize=False, cfg_options=cfg_options)
    eager = inferencer.model
    randomise_batch_norms(eager)
    fast = optimize_for_inference(eager)
    assert folded(fast) and len(unfolded(eager)) > 100
    frame = cv2.imread(str(FRAME))  # the real 256x128 frame
    odd = cv2.resize(frame, (131, 97))  # not a multiple of the stride
    for image in (frame, odd):
        expected = inferencer.predict([image])[0].seg_logits.data
        inferencer.model = fast
        got = inferencer.predict([image])[0].seg_logits.data
        inferencer.model = eager
        assert got.shape == expected.shape == (19, *image.shape[:2])
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    # The eager model is left as it was.
    assert len(unfolded(eager)) > 100


def test_inferencers_run_the_fast_path_by_default():
    for inferencer in (SegInferencer(SEG18), PoseInferencer(POSE18)):
        model = inferencer.model
        assert folded(model)
        conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        weight = conv.weight
        assert weight.is_contiguous(memory_format=torch.channels_last)


def test_pose_fast_path_matches_eager():
    torch.manual_seed(0)
    inferencer = PoseInferencer(POSE18, optimize=False)
    eager = inferencer.model
    randomise_batch_norms(eager)
    image = cv2.imread(str(PERSON))
    boxes = [[[248, 74, 418, 375], [0, 0, 99, 99]]]
    expected = inferencer.predict([image], boxes)[0]
    inferencer.model = optimize_for_inference(eager)
    got = inferencer.predict([image], boxes)[0]
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(
            torch.as_tensor(a.pred_instances.keypoint_scores),
            torch.as_tensor(b.pred_instances.keypoint_scores),
            rtol=0,
            atol=1e-4,
        )
