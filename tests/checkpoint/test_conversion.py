"""Moving checkpoints between tasks: convert_checkpoint, extract_backbone,
their CLIs and the init-from example configs."""

import hashlib
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import litehrnet_seg  # noqa: F401  (registers the models)
from litehrnet_seg.checkpoint import (
    CheckpointMismatchError,
    MatchReport,
    convert_checkpoint,
    extract_backbone,
    infer_arch,
)
from litehrnet_seg.models.backbones.litehrnet import ARCH_SETTINGS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG_CFG = osp.join(
    REPO,
    'configs/litehrnet/fcn-concat_litehrnet18_4xb4-80k_cityscapes-512x1024.py',
)
SEG30_CFG = osp.join(
    REPO,
    'configs/litehrnet/fcn-concat_litehrnet30_4xb4-80k_cityscapes-512x1024.py',
)
POSE_CFG = osp.join(
    REPO, 'configs/pose/topdown-heatmap_litehrnet18_8xb64-210e_coco-256x192.py'
)
SEG_FROM_POSE = osp.join(
    REPO,
    'configs/litehrnet/fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024'
    '_init-from-coco-pose.py',
)
POSE_FROM_SEG = osp.join(
    REPO,
    'configs/pose/topdown-heatmap_litehrnet18_8xb64-210e_coco-256x192'
    '_init-from-cityscapes-seg.py',
)
TOOLS = osp.join(REPO, 'tools', 'checkpoint')


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every tensor (BN statistics too) distinctive random values, so
    that equality after loading cannot come from a shared initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if 'running_var' in key:
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
            elif value.is_floating_point():
                value.add_(0.05 * torch.randn(value.shape, generator=gen))
            else:
                value.fill_(7)
    return model.eval()


def build(config: str, **backbone) -> torch.nn.Module:
    cfg = Config.fromfile(config)
    cfg.model.backbone.update(backbone)
    return MODELS.build(cfg.model)


def save(state: dict, path, meta: dict | None = None) -> str:
    torch.save({'state_dict': state, 'meta': meta or {}}, path)
    return str(path)


def official_layout(pose: torch.nn.Module) -> dict:
    """mmpose 0.x key names: ``keypoint_head.final_layer.*``."""
    return {
        ('keypoint_head.' + k[5:] if k.startswith('head.') else k): v
        for k, v in pose.state_dict().items()
    }


def sha256(path) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def assert_same_backbone(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.backbone.state_dict(), b.backbone.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture(scope='module')
def seg_model():
    init_default_scope('mmseg')
    return randomised(build(SEG_CFG), seed=1)


@pytest.fixture(scope='module')
def pose_model():
    init_default_scope('mmseg')
    return randomised(build(POSE_CFG), seed=2)


@pytest.fixture
def seg_ckpt(seg_model, tmp_path):
    return save(seg_model.state_dict(), tmp_path / 'seg.pth', {'iter': 10})


@pytest.fixture
def official_ckpt(pose_model, tmp_path):
    return save(official_layout(pose_model), tmp_path / 'official.pth')


@pytest.mark.parametrize('keep_prefix', [False, True])
def test_seg_to_pose_through_extracted_backbone(
    seg_model, seg_ckpt, tmp_path, keep_prefix
):
    dst = str(tmp_path / 'backbone.pth')
    meta = extract_backbone(seg_ckpt, dst, keep_prefix=keep_prefix)
    assert meta['arch'] == '18' and meta['task'] == 'seg'
    assert meta['prefix'] == ('backbone.' if keep_prefix else '')
    saved = torch.load(dst, map_location='cpu')
    assert saved['meta'] == meta
    assert all(
        k.startswith('backbone.') == keep_prefix for k in saved['state_dict']
    )
    assert not any(
        'decode_head' in k or 'final_layer' in k for k in saved['state_dict']
    )
    # The example config, pointed at the extracted file.
    cfg = Config.fromfile(POSE_FROM_SEG)
    cfg.model.backbone.init_cfg.checkpoint = dst
    if not keep_prefix:
        cfg.model.backbone.init_cfg.pop('prefix')
    pose = MODELS.build(cfg.model)
    pose.init_weights()
    assert_same_backbone(pose, seg_model)


def test_pose_to_seg_through_extracted_backbone_and_directly(
    pose_model, official_ckpt, tmp_path
):
    dst = str(tmp_path / 'backbone.pth')
    meta = extract_backbone(official_ckpt, dst)
    assert meta['arch'] == '18' and meta['task'] == 'pose'
    assert meta['sha256'] == sha256(official_ckpt)
    for checkpoint, prefix in ((dst, None), (official_ckpt, 'backbone.')):
        cfg = Config.fromfile(SEG_FROM_POSE)
        cfg.model.backbone.init_cfg.update(
            checkpoint=checkpoint, prefix=prefix
        )
        seg = MODELS.build(cfg.model)
        seg.init_weights()
        assert_same_backbone(seg, pose_model)


def test_official_layout_converts_to_identical_outputs(
    pose_model, official_ckpt, tmp_path
):
    dst = str(tmp_path / 'converted.pth')
    report = convert_checkpoint(official_ckpt, POSE_CFG, dst)
    assert isinstance(report, MatchReport) and report.ok
    assert report.renamed == {
        'keypoint_head.final_layer.weight': 'head.final_layer.weight',
        'keypoint_head.final_layer.bias': 'head.final_layer.bias',
    }
    assert not (report.missing or report.unexpected or report.mismatched)
    assert len(report.matched) == len(pose_model.state_dict()) - 2
    text = report.format()
    assert 'keypoint_head.* -> head.* (2 keys)' in text
    assert 'result: OK' in text
    print(text)  # shown with pytest -s

    saved = torch.load(dst, map_location='cpu')
    assert saved['meta']['sha256'] == sha256(official_ckpt)
    assert list(saved['state_dict']) == list(pose_model.state_dict())
    fresh = build(POSE_CFG)
    fresh.load_state_dict(saved['state_dict'], strict=True)
    x = torch.randn(1, 3, 64, 48, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = pose_model(x, mode='tensor')
        assert torch.isfinite(expected).all() and expected.abs().sum() > 0
        assert torch.equal(fresh.eval()(x, mode='tensor'), expected)


def test_mmpose1_and_plain_backbone_files(pose_model, tmp_path):
    # mmpose 1.x layout: every key matches as is
    mmpose1 = save(pose_model.state_dict(), tmp_path / 'mmpose1.pth')
    report = convert_checkpoint(mmpose1, POSE_CFG)
    assert report.ok and not report.renamed
    # an old file without BatchNorm counters: they are filled in
    old = {
        k: v
        for k, v in pose_model.state_dict().items()
        if not k.endswith('num_batches_tracked')
    }
    counters = len(pose_model.state_dict()) - len(old)
    report = convert_checkpoint(save(old, tmp_path / 'old.pth'), POSE_CFG)
    assert report.ok and len(report.filled) == counters > 0
    # a plain backbone state dict: the head is new, allowed explicitly
    plain = save(pose_model.backbone.state_dict(), tmp_path / 'plain.pth')
    with pytest.raises(ValueError, match='head.final_layer.weight'):
        convert_checkpoint(plain, POSE_CFG)
    dst = str(tmp_path / 'out.pth')
    report = convert_checkpoint(plain, POSE_CFG, dst, allow_new_head=True)
    assert report.ok and not report.matched
    assert report.new_head == [
        'head.final_layer.weight',
        'head.final_layer.bias',
    ]
    assert report.rename_rules() == {'* -> backbone.*': len(report.renamed)}
    state = torch.load(dst, map_location='cpu')['state_dict']
    assert not any(k.startswith('head.') for k in state)
    for key, value in pose_model.backbone.state_dict().items():
        assert torch.equal(state['backbone.' + key], value), key


def test_l18_into_l30_is_refused_naming_missing_keys(seg_ckpt, tmp_path):
    dst = tmp_path / 'never.pth'
    with pytest.raises(CheckpointMismatchError) as err:
        convert_checkpoint(seg_ckpt, SEG30_CFG, str(dst))
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert seg_ckpt in message and 'missing key(s)' in message
    assert 'backbone.stage0.2.' in message  # L30 has 3 modules in stage 0
    assert 'backbone.stage1.4.' in message  # and 8 in stage 1
    assert not err.value.report.mismatched  # L18 and L30 share widths
    assert not dst.exists()  # nothing half-written


def test_naive_into_lite_lists_shape_mismatches(tmp_path):
    naive = MODELS.build(dict(type='LiteHRNet', arch='naive_18'))
    src = save(naive.state_dict(), tmp_path / 'naive.pth')
    with pytest.raises(ValueError) as err:
        convert_checkpoint(src, POSE_CFG, allow_new_head=True)
    message = str(err.value)
    assert 'shape mismatch' in message
    assert (
        'backbone.transition0.0.2.weight: checkpoint (30, 32, 1, 1) vs '
        'model (40, 32, 1, 1)'
    ) in message
    assert '... and' in message  # long lists capped, counts exact


def test_truncated_file_names_the_file(seg_ckpt, tmp_path):
    truncated = tmp_path / 'truncated.pth'
    with open(seg_ckpt, 'rb') as f:
        truncated.write_bytes(f.read()[:4096])
    with pytest.raises(RuntimeError, match='truncated.pth'):
        convert_checkpoint(str(truncated), POSE_CFG)
    with pytest.raises(RuntimeError, match='truncated.pth'):
        extract_backbone(str(truncated), str(tmp_path / 'out.pth'))


def test_extract_meta_multi_task_and_errors(seg_model, pose_model, tmp_path):
    state = dict(seg_model.state_dict())
    state.update(
        (k, v) for k, v in pose_model.state_dict().items() if 'head.' in k
    )
    src = save(state, tmp_path / 'multi.pth')
    meta = extract_backbone(src, str(tmp_path / 'bb.pth'), keep_prefix=True)
    assert meta['task'] == 'multi-task' and meta['arch'] == '18'
    assert meta['sha256'] == sha256(src) and meta['source'] == src
    assert meta['num_tensors'] == len(seg_model.backbone.state_dict())
    assert meta['date'][:4].isdigit() and 'T' in meta['date']
    no_backbone = save({'decode_head.x': torch.zeros(1)}, tmp_path / 'h.pth')
    with pytest.raises(ValueError, match='no backbone tensors'):
        extract_backbone(no_backbone, str(tmp_path / 'x.pth'))


@pytest.mark.parametrize('arch', sorted(ARCH_SETTINGS))
def test_infer_arch(arch):
    state = MODELS.build(dict(type='LiteHRNet', arch=arch)).state_dict()
    info = infer_arch(state)
    spec = ARCH_SETTINGS[arch]['stages_spec']
    assert info['arch'] == arch
    assert tuple(info['num_modules']) == tuple(spec['num_modules'])
    assert info['channels'] == spec['num_channels'][0][0]
    assert info['with_head']


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, osp.join(TOOLS, f'{name}.py'), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def load_tool(name: str):
    """Import tools/checkpoint/<name>.py as a module (not a package)."""
    spec = importlib.util.spec_from_file_location(
        f'_checkpoint_tool_{name}', osp.join(TOOLS, f'{name}.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('name', ['convert', 'extract_backbone'])
def test_cli_help(name):
    result = run_tool(name, '--help')
    assert result.returncode == 0 and 'usage:' in result.stdout


@pytest.mark.slow
def test_cli_converts_in_a_subprocess(official_ckpt, tmp_path):
    dst = str(tmp_path / 'converted.pth')
    result = run_tool('convert', official_ckpt, POSE_CFG, '--out', dst)
    assert result.returncode == 0, result.stderr
    assert 'keypoint_head.* -> head.* (2 keys)' in result.stdout
    assert 'result: OK' in result.stdout and osp.isfile(dst)


@pytest.mark.slow
def test_cli_mismatch_and_bad_files_exit_non_zero(seg_ckpt, tmp_path, capsys):
    convert = load_tool('convert')
    assert convert.main([seg_ckpt, SEG30_CFG]) == 1
    out, err = capsys.readouterr()
    assert 'REFUSED' in out and 'backbone.stage1.4.*' in out
    assert 'missing key(s)' in err and seg_ckpt in err
    assert convert.main([seg_ckpt, SEG30_CFG, '--allow-new-head']) == 1
    capsys.readouterr()
    # An L30 checkpoint is a key superset of L18's: refused, nothing written.
    seg30 = save(build(SEG30_CFG).state_dict(), tmp_path / 'seg30.pth')
    never = tmp_path / 'never.pth'
    assert convert.main([seg30, SEG_CFG, '--out', str(never)]) == 1
    out, err = capsys.readouterr()
    assert 'REFUSED' in out and 'unexpected key(s)' in err and seg30 in err
    assert 'backbone.stage0.2.*' in err and not never.exists()

    extract = load_tool('extract_backbone')
    out_file = str(tmp_path / 'bb.pth')
    assert extract.main([seg_ckpt, out_file]) == 0
    out, _ = capsys.readouterr()
    meta = json.loads(out[out.index('{') :])
    assert meta['arch'] == '18' and meta['task'] == 'seg'
    assert meta['sha256'] == sha256(seg_ckpt)

    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(b'PK\x03\x04 not a checkpoint')
    for main, args in (
        (extract.main, [str(truncated), out_file]),
        (convert.main, [str(truncated), POSE_CFG]),
    ):
        assert main(args) == 1
        _, err = capsys.readouterr()
        assert 'truncated.pth' in err and 'Traceback' not in err
