"""FLOPs and parameters: the paper's counting convention reproduces its
reference figures, every segmentation config with the default head stays
within the paper-cost targets, and get_flops.py checks its arguments.

Reference figures (docs/flops.md, measured with the
paper's counter): our pose L18 / L30 at 256x192 203.5M / 316.1M; our seg
L18 with the 320-channel concat head at 512x1024 5.438G (binary units).
"""

import functools
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine import Config
from mmengine.registry import init_default_scope

from litehrnet_seg.analysis import (
    GIGA,
    build_counting_model,
    count_flops,
    count_official_flops,
    module_flops,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs'
GET_FLOPS = ROOT / 'tools' / 'analysis' / 'get_flops.py'
SEG_L18 = (
    CONFIGS
    / 'litehrnet/fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py'
)
SEG_L30 = (
    CONFIGS
    / 'litehrnet/fcn-concat_litehrnet30_4xb4-160k_cityscapes-512x1024.py'
)
SEG320_L18 = (
    CONFIGS
    / 'litehrnet/fcn-concat320_litehrnet18_4xb4-160k_cityscapes-512x1024.py'
)
POSE = 'configs/pose/topdown-heatmap_litehrnet{}_8xb64-210e_coco-256x192.py'

# Paper-cost targets at 512x1024 (issue 11): FLOPs in both conventions
# (mmengine: decimal G; official: binary G) and parameters.
TARGETS = {
    '18': dict(mmengine=2.6e9, official=2.6 * GIGA, params=1.15e6),
    '30': dict(mmengine=3.9e9, official=3.9 * GIGA, params=1.79e6),
}
# Every config that builds a Lite-HRNet segmentation model with the default
# (light) head: all of configs/litehrnet except the wide-head variants
# (`fcn-concat<width>_...`), plus the multi-task config.
LIGHT = sorted(
    p
    for p in (CONFIGS / 'litehrnet').glob('*.py')
    if p.name.startswith('fcn-concat_')
) + [CONFIGS / 'multitask/segpose_litehrnet18_sample.py']


def _plain(node):
    """A model config as comparable data: SyncBN as BN, no ``init_cfg``
    (initialisation does not change the network)."""
    if isinstance(node, dict):
        out = {k: _plain(v) for k, v in node.items() if k != 'init_cfg'}
        if out.get('type') == 'SyncBN':
            out['type'] = 'BN'
        return out
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return node


@functools.cache
def _seg_network(path):
    """(arch, comparable backbone + decode head config) of a config."""
    model = Config.fromfile(str(path)).model
    net = _plain(dict(backbone=model.backbone, head=model.decode_head))
    return model.backbone.arch, net


@functools.cache
def _measured(arch):
    """FLOPs (both conventions) and params of the default L18 / L30 seg
    model at 512x1024, counted once per arch."""
    init_default_scope('mmseg')
    model = build_counting_model(SEG_L18 if arch == '18' else SEG_L30)
    mm = count_flops(model, 512, 1024, 'mmengine')
    official = count_flops(model, 512, 1024, 'official')
    return dict(
        mmengine=mm['flops'], official=official['flops'], params=mm['params']
    )


def test_light_configs_found():
    names = {p.name for p in LIGHT}
    for schedule in ('160k', '80k'):
        for arch in ('18', '30'):
            assert any(
                f'litehrnet{arch}_4xb4-{schedule}_cityscapes-512x1024' in n
                for n in names
            )
    assert any('sample' in n for n in names)
    assert any('test-submission' in n for n in names)
    assert any('init-from-coco-pose' in n for n in names)
    assert any('segpose' in n for n in names)


@pytest.mark.slow
@pytest.mark.parametrize('path', LIGHT, ids=[p.stem for p in LIGHT])
def test_seg_config_within_paper_cost(path):
    """Each config's network is the default L18 or L30 one (same backbone
    and head config up to SyncBN/BN), whose cost is within the targets."""
    arch, network = _seg_network(path)
    reference = SEG_L18 if arch == '18' else SEG_L30
    assert network == _seg_network(reference)[1]
    measured, target = _measured(arch), TARGETS[arch]
    for key in ('mmengine', 'official', 'params'):
        assert measured[key] <= target[key], (key, measured[key])


def _run_get_flops(capsys, *argv):
    spec = importlib.util.spec_from_file_location('get_flops', GET_FLOPS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main([str(a) for a in argv])
    out = capsys.readouterr().out
    return [
        (float(value), unit)
        for value, unit in re.findall(r'FLOPs ([\d.]+) ([MG]) ', out)
    ], out


@pytest.mark.parametrize('arch,reference', [('18', 203.5), ('30', 316.1)])
def test_official_convention_reproduces_pose_figures(capsys, arch, reference):
    (figure,), out = _run_get_flops(
        capsys,
        ROOT / POSE.format(arch),
        '--shape',
        256,
        192,
        '--convention',
        'official',
    )
    assert "official (the paper's counter)" in out
    assert figure[1] == 'M'
    assert figure[0] == pytest.approx(reference, rel=5e-3)


def test_official_convention_reproduces_seg320_figure(capsys):
    (figure,), out = _run_get_flops(
        capsys, SEG320_L18, '--convention', 'official'
    )
    assert figure[1] == 'G'
    assert figure[0] == pytest.approx(5.438, rel=5e-3)
    # Built with plain BN (the config says SyncBN): nothing left uncounted.
    assert 'module types counted 0: none' in out
    assert 'params 1,239,211' in out


def test_default_head_cost_in_both_conventions():
    """Backbone + IterativeHead: 2.097G official; the 32-channel head adds
    0.08G (the 320-channel one 3.34G)."""
    measured = _measured('18')
    assert measured['official'] / GIGA == pytest.approx(2.175, rel=5e-3)
    assert measured['mmengine'] / 1e9 == pytest.approx(2.413, rel=5e-3)
    assert measured['params'] == 1_141_003


@pytest.mark.parametrize(
    'argv,expected',
    [
        (['--shape', '0', '0'], 'argument --shape: expected a positive'),
        (['--shape', '-512', '1024'], 'argument --shape: expected a positive'),
        (['--shape', '512', 'x'], 'argument --shape: expected a positive'),
        (
            ['--shape', '512', '1024', '256'],
            'argument --shape: expected pairs',
        ),
        (['--convention', 'fvcore'], 'argument --convention: invalid choice'),
    ],
)
def test_bad_arguments_exit_2_before_any_work(argv, expected):
    proc = subprocess.run(
        [sys.executable, str(GET_FLOPS), str(SEG_L18), *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr
    assert not proc.stdout  # nothing was counted


def test_missing_config_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(GET_FLOPS), str(tmp_path / 'nope.py')],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert 'argument config: no such file' in proc.stderr


# ---- the counter itself, on small modules ------------------------------


def _count(module, *shape):
    return count_official_flops(module, torch.randn(*shape))


def test_module_formulas():
    x = torch.randn(2, 4, 6, 10)
    conv = nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2)
    y = conv(x)  # (2, 8, 3, 5)
    assert module_flops(conv, x, y) == 9 * 4 * (8 // 2) * 2 * 3 * 5 + (
        8 * 2 * 3 * 5
    )
    assert module_flops(nn.BatchNorm2d(4), x, x) == 2 * x.numel()
    assert module_flops(nn.BatchNorm2d(4, affine=False), x, x) == x.numel()
    assert module_flops(nn.ReLU(), x, x) == x.numel()
    assert module_flops(nn.Sigmoid(), x, x) == 0
    pool = nn.MaxPool2d(2)
    assert module_flops(pool, x, pool(x)) == 2 * 4 * 3 * 5 * 4
    up = nn.Upsample(scale_factor=2)
    assert module_flops(up, x, up(x)) == 2 * 12 * 20  # no channels
    lin = nn.Linear(10, 3)
    assert module_flops(lin, x, lin(x)) == 2 * 10 * 3
    # adaptive pooling 6 -> 4 rows: bins [0,2) [1,3) [3,5) [4,6), 10 -> 3
    # cols: [0,4) [3,7) [6,10); each bin counts (len + 1) per axis
    adaptive = nn.AdaptiveAvgPool2d((4, 3))
    assert module_flops(adaptive, x, adaptive(x)) == 2 * 4 * (4 * 3) * (3 * 5)
    # unknown types (e.g. SyncBN, mmengine's _BatchNormXd) are not counted
    assert module_flops(nn.SyncBatchNorm(4), x, x) is None


def test_last_call_per_module_and_functional_ops_count_nothing():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1, bias=False)
            self.sync = nn.SyncBatchNorm(3)

        def forward(self, x):
            big = self.sync(self.conv(x))  # conv: 2304 MACs, overwritten
            small = self.conv(x[..., :4, :4])  # 9 * 4 * 4 = 144
            up = nn.functional.interpolate(small, size=(16, 16))
            return torch.cat([big, up], 1) * 2

    result = _count(Net().eval(), 1, 3, 16, 16)
    assert result.total == 144
    assert result.by_module == {'conv': 144}
    assert result.uncounted == {'SyncBatchNorm': 1}
