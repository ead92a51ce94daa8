"""Every entry point refuses a checkpoint of another architecture or task:
non-zero exit, a message naming the file and the mismatch, nothing
written."""

import importlib.util
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import litehrnet_seg  # noqa: F401  (registers the models)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SAMPLE = osp.join(
    REPO,
    'configs/litehrnet/fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-'
    '128x256.py',
)
SEG30 = osp.join(
    REPO,
    'configs/litehrnet/fcn-concat_litehrnet30_4xb4-80k_cityscapes-512x1024.py',
)
POSE18 = osp.join(
    REPO, 'configs/pose/topdown-heatmap_litehrnet18_8xb64-210e_coco-256x192.py'
)


@pytest.fixture(scope='module')
def wrong(tmp_path_factory):
    """Random-weight L30 seg and L18 pose checkpoints."""
    init_default_scope('mmseg')
    root = tmp_path_factory.mktemp('wrong')
    paths = {}
    for name, config in (('seg30', SEG30), ('pose18', POSE18)):
        model = MODELS.build(Config.fromfile(config).model)
        paths[name] = str(root / f'{name}.pth')
        torch.save({'state_dict': model.state_dict()}, paths[name])
    return paths


def run(*args: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    'name, expected',
    [('seg30', 'backbone.stage0.2.*'), ('pose18', 'decode_head.')],
)
def test_test_py_refuses_before_writing_anything(
    wrong, tmp_path, name, expected
):
    work_dir = tmp_path / 'work'
    result = run(
        osp.join(REPO, 'tools/test.py'),
        SAMPLE,
        wrong[name],
        '--work-dir',
        str(work_dir),
        cwd=REPO,
    )
    assert result.returncode != 0
    assert wrong[name] in result.stderr and SAMPLE in result.stderr
    assert expected in result.stderr
    assert 'Traceback' not in result.stderr
    assert not work_dir.exists()


@pytest.mark.slow
def test_test_py_names_an_empty_checkpoint(tmp_path):
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    result = run(
        osp.join(REPO, 'tools/test.py'),
        SAMPLE,
        str(empty),
        '--work-dir',
        str(tmp_path / 'work'),
        cwd=REPO,
    )
    assert result.returncode != 0
    assert 'empty.pth' in result.stderr and 'empty (0 bytes)' in result.stderr


def _export_tool():
    spec = importlib.util.spec_from_file_location(
        'export_onnx_tool', osp.join(REPO, 'tools/deployment/export_onnx.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    'name, expected',
    [('seg30', 'backbone.stage0.2.*'), ('pose18', 'decode_head.')],
)
def test_export_onnx_refuses_before_writing_anything(
    wrong, tmp_path, capsys, name, expected
):
    out = tmp_path / 'model.onnx'
    with pytest.raises(SystemExit) as exc:
        _export_tool().main(
            [SAMPLE, '--checkpoint', wrong[name], '--out', str(out)]
        )
    message = str(exc.value.code)
    assert message.startswith('error: ')
    assert wrong[name] in message and SAMPLE in message
    assert expected in message
    assert not list(tmp_path.iterdir())
