"""tools/analysis/benchmark.py end to end in tiny mode (no timing
asserted): every variant, precision, training row and peer is measured and
reported in the table and the JSON."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SEG_CONFIG = (
    'configs/litehrnet/'
    'fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-128x256.py'
)


def load_tool():
    path = ROOT / 'tools/analysis/benchmark.py'
    spec = importlib.util.spec_from_file_location('benchmark_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_benchmark_with_peers_and_training(tmp_path, capsys):
    tool = load_tool()
    out = tmp_path / 'bench.json'
    rows = tool.main(
        [
            str(ROOT / SEG_CONFIG),
            '--peers',
            '--tiny',
            '--threads',
            '1',
            '--variants',
            'eager',
            'fold_bn',
            'channels_last',
            '--precision',
            'fp32',
            'bf16',
            '--train',
            '--amp',
            '--train-batch',
            '2',  # BiSeNetV2's pooled BN needs two samples
            '--json',
            str(out),
        ]
    )
    configs = {r['config'] for r in rows}
    assert configs == {
        Path(SEG_CONFIG).stem,
        'fcn_hr18s_4xb2-40k_cityscapes-512x1024',
        'bisenetv2_fcn_4xb4-160k_cityscapes-1024x1024',
    }
    ours = [r for r in rows if r['config'] == Path(SEG_CONFIG).stem]
    assert [(r['variant'], r['precision']) for r in ours] == [
        ('eager', 'fp32'),
        ('eager', 'bf16'),
        ('fold_bn', 'fp32'),
        ('channels_last', 'fp32'),
        ('train-fp32', 'fp32'),
        ('train-amp', 'amp'),
    ]
    for r in rows:
        assert r['median_ms'] > 0 and r['p90_ms'] >= r['median_ms']
        assert r['images_per_s'] > 0 and r['peak_mib'] >= 0
        assert r['shape'] == [64, 128]
    saved = json.loads(out.read_text())
    assert saved['results'] == rows and saved['meta']['threads'] == 1
    table = capsys.readouterr().out
    lines = [line for line in table.splitlines() if line.startswith('| ')]
    assert len(lines) == len(rows) + 1  # header + one per row
    assert 'fcn_hr18s' in table and '| ratio |' in table


def test_unknown_config_is_named(tmp_path):
    tool = load_tool()
    try:
        tool.main(['mmseg::nope/missing.py', '--tiny'])
    except FileNotFoundError as e:
        assert 'mmseg::nope/missing.py' in str(e)
    else:
        raise AssertionError('expected FileNotFoundError')


def test_cuda_graphs_variant_falls_back_on_cpu(capsys):
    tool = load_tool()
    rows = tool.main(
        [
            str(ROOT / SEG_CONFIG),
            '--tiny',
            '--threads',
            '1',
            '--variants',
            'eager',
            'fold_bn',
            'cuda_graphs',
        ]
    )
    assert [r['variant'] for r in rows] == ['eager', 'fold_bn', 'cuda_graphs']
    assert all(r['device'] == 'cpu' and r['median_ms'] > 0 for r in rows)
    err = capsys.readouterr().err
    assert 'cuda_graphs: no CUDA device' in err


@pytest.mark.slow
def test_keep_going_records_a_failing_variant(tmp_path, monkeypatch):
    tool = load_tool()
    prepare = tool._prepare

    def failing_prepare(model, variant, x, args):
        if variant == 'fold_bn':
            raise RuntimeError('capture failed')
        return prepare(model, variant, x, args)

    monkeypatch.setattr(tool, '_prepare', failing_prepare)
    argv = [str(ROOT / SEG_CONFIG), '--tiny', '--threads', '1']
    argv += ['--variants', 'eager', 'fold_bn', 'channels_last']
    with pytest.raises(RuntimeError, match='capture failed'):
        tool.main(argv)
    out = tmp_path / 'bench.json'
    rows = tool.main(argv + ['--keep-going', '--json', str(out)])
    assert [r['variant'] for r in rows] == ['eager', 'channels_last']
    saved = json.loads(out.read_text())
    assert saved['failures'] == [
        dict(
            config=Path(SEG_CONFIG).stem,
            variant='fold_bn',
            precision='fp32',
            error='RuntimeError: capture failed',
        )
    ]


@pytest.mark.parametrize(
    'variant, dims',
    [
        ('onnxruntime', ['batch', 3, 'height', 'width']),
        ('onnxruntime_static', ['batch', 3, 64, 128]),
    ],
)
def test_onnxruntime_variants_export_dynamic_or_static(
    monkeypatch, variant, dims
):
    pytest.importorskip('onnxruntime')
    tool = load_tool()
    sessions = []
    make_session = tool.onnxruntime_session

    def recording_session(path, threads):
        sessions.append(make_session(path, threads))
        return sessions[-1]

    monkeypatch.setattr(tool, 'onnxruntime_session', recording_session)
    model = torch.nn.Conv2d(3, 4, 3, padding=1).eval()
    x = torch.randn(1, 3, 64, 128)
    args = tool.parse_args(['--peers', '--threads', '1'])
    run, cleanup = tool._prepare(model, variant, x, args)
    try:
        (out,) = run()
        torch.testing.assert_close(torch.from_numpy(out), model(x))
    finally:
        cleanup()
    assert sessions[0].get_inputs()[0].shape == dims
