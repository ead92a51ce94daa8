"""tools/analysis/profile_backbone.py on a tiny input (no timing asserted):
every mode is profiled and timed, and each mode really sets the layout and
the fuse sum order it names."""

import importlib.util
from pathlib import Path

import torch

from litehrnet_seg.models.layers import LiteHRModule

ROOT = Path(__file__).resolve().parents[2]


def load_tool():
    path = ROOT / 'tools/analysis/profile_backbone.py'
    spec = importlib.util.spec_from_file_location('profile_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_mode_is_profiled_and_timed(capsys):
    tool = load_tool()
    modes = list(tool.MODES)
    argv = ['--shape', '64', '96', '--runs', '1', '--warmup', '0']
    results = tool.main(argv + ['--modes', *modes, '--ab', '1'])
    out = capsys.readouterr().out
    assert set(results) == set(modes) | {'ab'}
    assert all(len(results['ab'][m]) == 1 for m in modes)
    for mode in modes:
        assert f'### {mode}:' in out and f'| {mode} |' in out


def test_modes_set_layout_and_fuse_sum_order():
    tool = load_tool()
    model = tool.build_backbone('18')
    for mode, (nhwc, memory_format, order) in tool.MODES.items():
        assert tool.set_mode(model, mode) == memory_format
        assert model.cpu_channels_last == nhwc
        weight = model.stem.conv1.conv.weight
        assert weight.is_contiguous(memory_format=memory_format), mode
        orders = {
            m.fuse_sum_order
            for m in model.modules()
            if isinstance(m, LiteHRModule)
        }
        assert orders == {order}, mode
    assert {o for *_, o in tool.MODES.values()} == {
        'sequential',
        'coarse_first',
    }
    assert torch.channels_last in {f for _, f, _ in tool.MODES.values()}
