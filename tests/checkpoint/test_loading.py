"""The strict loader: ``load_checkpoint``, ``read_checkpoint``,
``build_model`` and the backbone's ``Pretrained`` init through them."""

import os.path as osp

import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import litehrnet_seg  # noqa: F401  (registers the models)
from litehrnet_seg.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    build_model,
    load_checkpoint,
    read_checkpoint,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG18 = osp.join(
    REPO,
    'configs/litehrnet/fcn-concat_litehrnet18_4xb4-80k_cityscapes-512x1024.py',
)
SEG30 = osp.join(
    REPO,
    'configs/litehrnet/fcn-concat_litehrnet30_4xb4-80k_cityscapes-512x1024.py',
)
POSE18 = osp.join(
    REPO, 'configs/pose/topdown-heatmap_litehrnet18_8xb64-210e_coco-256x192.py'
)


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def backbone(arch='18', **init):
    cfg = dict(type='LiteHRNet', arch=arch)
    if init:
        cfg['init_cfg'] = dict(type='Pretrained', **init)
    return MODELS.build(cfg)


def model_of(config: str) -> torch.nn.Module:
    return MODELS.build(Config.fromfile(config).model)


def save(model: torch.nn.Module, path, meta: dict | None = None) -> str:
    torch.save({'state_dict': model.state_dict(), 'meta': meta or {}}, path)
    return str(path)


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    """Random-weight checkpoints of L18 seg, L30 seg and L18 pose."""
    init_default_scope('mmseg')
    root = tmp_path_factory.mktemp('ckpts')
    torch.manual_seed(0)
    return dict(
        seg18=save(model_of(SEG18), root / 'seg18.pth'),
        seg30=save(model_of(SEG30), root / 'seg30.pth'),
        pose18=save(model_of(POSE18), root / 'pose18.pth'),
    )


def test_same_architecture_loads_every_tensor(ckpts):
    model = model_of(SEG18)
    load_checkpoint(model, ckpts['seg18'])
    saved = read_checkpoint(ckpts['seg18'])['state_dict']
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_bigger_arch_is_refused_naming_unexpected_modules(ckpts):
    """An L30 checkpoint is a key superset of L18's: refused, not half
    loaded, and the message names the file, the config and the modules."""
    model = model_of(SEG18)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(model, ckpts['seg30'], config=SEG18)
    message = str(err.value)
    assert ckpts['seg30'] in message and SEG18 in message
    assert 'unexpected key(s)' in message
    assert 'backbone.stage0.2.*' in message  # grouped by module
    assert err.value.report.unexpected  # exact list kept on the error
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_other_task_is_refused_both_ways(ckpts):
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(model_of(SEG18), ckpts['pose18'])
    message = str(err.value)
    assert 'missing key(s)' in message and 'decode_head.' in message
    assert 'unexpected key(s)' in message and 'head.final_layer' in message
    with pytest.raises(CheckpointMismatchError, match='decode_head'):
        load_checkpoint(model_of(POSE18), ckpts['seg18'])


def test_allow_new_head_loads_the_backbone_and_says_what_it_skipped(
    ckpts, capsys
):
    pose = model_of(POSE18)
    head_before = pose.head.final_layer.weight.clone()
    load_checkpoint(pose, ckpts['seg18'], allow_new_head=True)
    saved = read_checkpoint(ckpts['seg18'])['state_dict']
    key = 'backbone.stage2.1.fuse_layers.3.2.0.3.weight'
    assert torch.equal(pose.state_dict()[key], saved[key])
    assert torch.equal(pose.head.final_layer.weight, head_before)
    # The opt-in still checks the backbone strictly.
    with pytest.raises(CheckpointMismatchError, match='backbone.stage0.2'):
        load_checkpoint(model_of(POSE18), ckpts['seg30'], allow_new_head=True)


def test_official_head_keys_are_renamed(ckpts, tmp_path):
    pose = model_of(POSE18)
    state = {
        ('keypoint_head.' + k[5:] if k.startswith('head.') else k): v
        for k, v in read_checkpoint(ckpts['pose18'])['state_dict'].items()
    }
    path = tmp_path / 'official.pth'
    torch.save({'state_dict': state}, path)
    load_checkpoint(pose, str(path))
    assert torch.equal(
        pose.head.final_layer.weight, state['keypoint_head.final_layer.weight']
    )


@pytest.mark.parametrize(
    'make, expected',
    [
        (lambda p: p.write_bytes(b''), 'is empty (0 bytes)'),
        (lambda p: p.mkdir(), 'is a directory'),
        (lambda p: None, 'does not exist'),
        (lambda p: p.write_bytes(b'PK\x03\x04garbage'), 'truncated'),
    ],
    ids=['empty', 'directory', 'missing', 'truncated'],
)
def test_unreadable_files_are_named(tmp_path, make, expected):
    path = tmp_path / 'bad.pth'
    make(path)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(str(path))
    assert str(path) in str(err.value) and expected in str(err.value)


def test_truncated_real_checkpoint(ckpts, tmp_path):
    path = tmp_path / 'cut.pth'
    with open(ckpts['seg18'], 'rb') as f:
        path.write_bytes(f.read()[:4096])
    with pytest.raises(CheckpointError, match='cut.pth.*truncated'):
        load_checkpoint(model_of(SEG18), str(path))


def test_pretrained_backbone_with_prefix(ckpts):
    net = backbone(checkpoint=ckpts['seg18'], prefix='backbone.')
    net.init_weights()
    saved = read_checkpoint(ckpts['seg18'])['state_dict']
    for key, value in net.state_dict().items():
        assert torch.equal(value, saved['backbone.' + key]), key


def test_pretrained_of_another_arch_is_refused(ckpts):
    net = backbone(checkpoint=ckpts['seg30'], prefix='backbone.')
    with pytest.raises(CheckpointMismatchError) as err:
        net.init_weights()
    assert ckpts['seg30'] in str(err.value)
    assert 'unexpected key(s)' in str(err.value)
    naive = backbone('naive_18', checkpoint=ckpts['seg18'], prefix='backbone.')
    with pytest.raises(CheckpointMismatchError) as err:
        naive.init_weights()
    assert (
        'transition0.0.2.weight: checkpoint (40, 32, 1, 1) vs model '
        '(30, 32, 1, 1)'
    ) in str(err.value)
    assert '... and' in str(err.value)  # long lists are capped


def test_pretrained_wrong_prefix_names_file_and_prefix(ckpts):
    with pytest.raises(CheckpointError, match="no keys under prefix 'head.'"):
        backbone(checkpoint=ckpts['seg18'], prefix='head.').init_weights()


def test_build_model_takes_dataset_meta_from_the_config(ckpts):
    """A pose checkpoint without ``dataset_meta`` (an official file after
    convert.py) still gets the flip indices, from the config's dataset."""
    model = build_model(POSE18, ckpts['pose18'])
    assert not model.training
    assert len(model.dataset_meta['flip_indices']) == 17
    assert model.dataset_meta['flip_indices'][1] == 2  # left eye <-> right
    seg = build_model(SEG18, ckpts['seg18'])
    assert len(seg.dataset_meta['classes']) == 19
    with pytest.raises(CheckpointMismatchError, match=SEG18):
        build_model(SEG18, ckpts['pose18'])
