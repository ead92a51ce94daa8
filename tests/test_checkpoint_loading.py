"""Backbone initialisation from checkpoints through ``init_cfg``."""

import pytest
import torch
from mmseg.registry import MODELS

import litehrnet_seg  # noqa: F401  (registers LiteHRNet)


def build(arch='18', **init):
    cfg = dict(type='LiteHRNet', arch=arch)
    if init:
        cfg['init_cfg'] = dict(type='Pretrained', **init)
    return MODELS.build(cfg)


def save_segmentor_checkpoint(model, path, prefix='backbone.'):
    state = {prefix + k: v for k, v in model.state_dict().items()}
    state['decode_head.conv_seg.weight'] = torch.zeros(19, 320, 1, 1)
    torch.save({'meta': {'iter': 1}, 'state_dict': state}, path)


def test_pretrained_with_prefix_loads_every_tensor(tmp_path):
    source = build()
    source.init_weights()
    path = tmp_path / 'seg.pth'
    save_segmentor_checkpoint(source, path)
    target = build(checkpoint=str(path), prefix='backbone.')
    target.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_checkpoint_of_another_arch_lists_shape_mismatches(tmp_path):
    path = tmp_path / 'l18.pth'
    save_segmentor_checkpoint(build(), path)
    target = build('naive_18', checkpoint=str(path), prefix='backbone.')
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError) as err:
        target.init_weights()
    message = str(err.value)
    assert str(path) in message and 'shape mismatch' in message
    assert (
        'transition0.0.2.weight: checkpoint (40, 32, 1, 1) vs model '
        '(30, 32, 1, 1)'
    ) in message
    assert '... and' in message  # long lists are capped, the count is not
    # Nothing was half-loaded.
    for key, value in target.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_missing_keys_are_refused(tmp_path):
    path = tmp_path / 'l18.pth'
    save_segmentor_checkpoint(build(), path)
    target = build('30', checkpoint=str(path), prefix='backbone.')
    with pytest.raises(ValueError, match=r'missing key\(s\): .*stage0\.2'):
        target.init_weights()


def test_wrong_prefix_and_corrupt_file_name_the_file(tmp_path):
    path = tmp_path / 'l18.pth'
    save_segmentor_checkpoint(build(), path)
    with pytest.raises(RuntimeError, match="no keys under prefix 'head.'"):
        build(checkpoint=str(path), prefix='head.').init_weights()
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(path.read_bytes()[:4096])
    with pytest.raises(RuntimeError, match='truncated.pth'):
        build(checkpoint=str(truncated)).init_weights()
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        build(checkpoint=str(tmp_path / 'absent.pth')).init_weights()


def test_unexpected_head_keys_only_warn(tmp_path):
    """A with-head checkpoint initialises a backbone without IterativeHead."""
    path = tmp_path / 'l18.pth'
    source = build()
    save_segmentor_checkpoint(source, path)
    target = MODELS.build(
        dict(
            type='LiteHRNet',
            with_head=False,
            init_cfg=dict(
                type='Pretrained', checkpoint=str(path), prefix='backbone.'
            ),
        )
    )
    target.init_weights()
    key = 'stage2.1.fuse_layers.3.2.0.3.weight'
    assert torch.equal(target.state_dict()[key], source.state_dict()[key])
