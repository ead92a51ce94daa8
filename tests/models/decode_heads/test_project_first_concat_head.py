"""ProjectFirstConcatHead is mmseg's FCNHead concat head, computed with the
mixing conv before the upsampling: same function, same parameter count."""

import copy

import pytest
import torch
from mmcv.cnn import fuse_conv_bn
from mmseg.registry import MODELS

import litehrnet_seg  # noqa: F401  (registers the head)

IN_CHANNELS = [40, 40, 80, 160]
COMMON = dict(
    in_channels=IN_CHANNELS,
    in_index=(0, 1, 2, 3),
    channels=32,
    num_classes=19,
    norm_cfg=dict(type='BN', requires_grad=True),
    align_corners=False,
    dropout_ratio=-1,
)


def branches(seed=0, height=24, width=40):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(2, c, height // 2**i + i, width // 2**i, generator=gen)
        for i, c in enumerate(IN_CHANNELS)
    ]


def heads():
    """A ProjectFirstConcatHead and the FCNHead with the same weights."""
    torch.manual_seed(0)
    light = MODELS.build(dict(type='ProjectFirstConcatHead', **COMMON))
    light.init_weights()
    fcn = MODELS.build(
        dict(
            type='FCNHead',
            input_transform='resize_concat',
            num_convs=1,
            kernel_size=1,
            concat_input=False,
            **COMMON,
        )
    )
    with torch.no_grad():
        weight = torch.cat([p.conv.weight for p in light.projects], dim=1)
        fcn.convs[0].conv.weight.copy_(weight)
        fcn.conv_seg.load_state_dict(light.conv_seg.state_dict())
        # non-trivial affine BN parameters
        light.norm_act.bn.weight.uniform_(0.5, 1.5)
        light.norm_act.bn.bias.uniform_(-0.2, 0.2)
        fcn.convs[0].bn.load_state_dict(light.norm_act.bn.state_dict())
    return light, fcn


def test_same_parameter_count_as_fcn_head():
    light, fcn = heads()
    count = sum(p.numel() for p in light.parameters())
    assert count == sum(p.numel() for p in fcn.parameters())
    assert count == 320 * 32 + 2 * 32 + 32 * 19 + 19


def test_equals_fcn_head_in_training_and_in_eval():
    light, fcn = heads()
    xs = branches()  # odd sizes: the upsampling is not a plain x2
    light.train(), fcn.train()
    out = light(xs)
    torch.testing.assert_close(out, fcn(xs), rtol=1e-5, atol=1e-6)
    # training-mode BN saw the same tensor: same running statistics
    torch.testing.assert_close(
        light.norm_act.bn.running_var, fcn.convs[0].bn.running_var
    )
    light.eval(), fcn.eval()
    with torch.no_grad():
        torch.testing.assert_close(light(xs), fcn(xs), rtol=1e-5, atol=1e-6)
    assert out.shape == (2, 19, *xs[0].shape[2:])


def test_gradients_flow_to_every_projection():
    light, _ = heads()
    light(branches()).square().mean().backward()
    for project in light.projects:
        assert project.conv.weight.grad.abs().sum() > 0


def test_conv_bn_folding_leaves_the_head_correct():
    """mmcv's fuse_conv_bn (the deploy `fold_bn` step) must not fold the BN
    after the sum into another conv."""
    light, _ = heads()
    light.eval()
    xs = branches(1)
    with torch.no_grad():
        expected = light(xs)
        actual = fuse_conv_bn(copy.deepcopy(light))(xs)
    torch.testing.assert_close(actual, expected)


def test_rejects_other_input_transforms_and_wrong_branches():
    with pytest.raises(ValueError, match="must be 'resize_concat'"):
        MODELS.build(
            dict(
                type='ProjectFirstConcatHead',
                **{**COMMON, 'in_channels': 40, 'in_index': 0},
                input_transform=None,
            )
        )
    light, _ = heads()
    with pytest.raises(ValueError, match='expects branches with'):
        light(branches()[::-1])
