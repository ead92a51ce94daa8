"""ONNX export: the CLI exports the bundled-frame seg model and onnxruntime
matches PyTorch on the real frame, at sizes not divisible by 32 and for a
batch; the TorchScript exporter gives the same dynamic graph; a pose model
exports with matching heatmaps; the CLI rejects bad arguments up front."""

import importlib.util
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.model import revert_sync_batchnorm
from model_utils import FRAME, ROOT, SEG_CONFIG, randomize, real_frame

from litehrnet_seg.checkpoint import build_model
from litehrnet_seg.deploy import (
    ParityError,
    TensorModel,
    check_parity,
    export_onnx,
    onnxruntime_session,
    parity_errors,
)

pytest.importorskip('onnxruntime')
POSE_CONFIG = (
    ROOT / 'configs/pose/'
    'topdown-heatmap_litehrnet18_1xb12-120i_coco-sample-256x192.py'
)
COCO_IMAGE = ROOT / 'tests/data/coco/000000197388.jpg'


def tensor_model(config: Path, checkpoint: Path | None = None):
    model = build_model(str(config), str(checkpoint) if checkpoint else None)
    return TensorModel(revert_sync_batchnorm(model)).eval()


@pytest.fixture(scope='module')
def exported(tmp_path_factory, run_tool):
    """Random-but-realistic weights saved as a checkpoint, exported by the
    CLI; returns (PyTorch model with those weights, onnx path, CLI log)."""
    tmp = tmp_path_factory.mktemp('onnx')
    model = tensor_model(SEG_CONFIG)
    randomize(model)
    ckpt = tmp / 'seg.pth'
    torch.save({'state_dict': model.model.state_dict()}, ckpt)
    out = tmp / 'seg.onnx'
    proc = run_tool(
        'tools/deployment/export_onnx.py',
        str(SEG_CONFIG),
        '--checkpoint',
        str(ckpt),
        '--out',
        str(out),
        '--image',
        str(FRAME),
        '--shape',
        '128',
        '256',
        '--runs',
        '2',
        cwd=ROOT,
    )
    return tensor_model(SEG_CONFIG, ckpt), out, proc.stdout


@pytest.mark.slow
def test_cli_reports_parity_and_latency(exported):
    _, out, log = exported
    assert out.is_file()
    assert 'parity 128x256: max abs diff' in log
    assert 'parity 77x135: max abs diff' in log  # not divisible by 32
    assert 'onnxruntime' in log and 'PyTorch eager' in log


@pytest.mark.slow
@pytest.mark.parametrize(
    'size,batch', [(None, 1), ((77, 135), 1), ((200, 333), 2)]
)
def test_onnxruntime_matches_pytorch_on_real_frame(exported, size, batch):
    model, out, _ = exported
    session = onnxruntime_session(out, threads=1)
    x = real_frame(model, size).expand(batch, -1, -1, -1).contiguous()
    diff = check_parity(session, model, x, atol=1e-4)
    assert diff < 1e-4
    # A tolerance below float rounding must fail: the check can fail.
    with pytest.raises(ParityError, match='max abs'):
        check_parity(session, model, x, atol=0.0)


@pytest.mark.slow
def test_pose_model_exports_with_matching_heatmaps(tmp_path):
    model = randomize(tensor_model(POSE_CONFIG))
    image = cv2.resize(cv2.imread(str(COCO_IMAGE)), (192, 256))
    chw = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    x = model.model.data_preprocessor(dict(inputs=[chw]), False)['inputs']
    # TorchScript exporter: the dynamo one is covered by the seg model
    # above and costs minutes more on a multi-branch network.
    path = export_onnx(
        model,
        tmp_path / 'pose.onnx',
        x,
        dynamic_hw=False,
        opset=17,
        exporter='torchscript',
    )
    session = onnxruntime_session(path, threads=1)
    assert check_parity(session, model, x) < 1e-4
    assert check_parity(session, model, x.repeat(3, 1, 1, 1)) < 1e-4


def test_export_rejects_old_opset(tmp_path):
    with pytest.raises(ValueError, match='opset must be >= 17'):
        export_onnx(
            torch.nn.Identity(), tmp_path / 'x.onnx', torch.ones(1), opset=16
        )


@pytest.fixture(scope='module')
def torchscript_exported(tmp_path_factory):
    """Random-but-realistic weights exported by the TorchScript tracer."""
    model = randomize(tensor_model(SEG_CONFIG))
    path = tmp_path_factory.mktemp('ts') / 'seg.onnx'
    export_onnx(model, path, real_frame(model), exporter='torchscript')
    return model, path


@pytest.mark.slow
@pytest.mark.parametrize(
    'size,batch', [((513, 1025), 1), ((250, 190), 1), ((77, 135), 2)]
)
def test_torchscript_exporter_is_shape_dynamic(
    torchscript_exported, size, batch
):
    model, path = torchscript_exported
    session = onnxruntime_session(path, threads=1)
    x = real_frame(model, size).expand(batch, -1, -1, -1).contiguous()
    _, rel = parity_errors(session, model, x)
    assert rel < 1e-5
    assert check_parity(session, model, x, atol=1e-3, rtol=1e-5) < 1e-3
    with pytest.raises(ParityError, match='relative'):
        check_parity(session, model, x, atol=1.0, rtol=0.0)


def test_torchscript_graph_has_no_traced_constant_sizes(
    torchscript_exported,
):
    import onnx

    graph = onnx.load(str(torchscript_exported[1])).graph
    ops = {n.op_type for n in graph.node}
    # Adaptive pooling became size-driven matrices, not fixed kernels.
    assert 'AveragePool' not in ops and 'MatMul' in ops
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ['batch', '', 'height', 'width']


def test_export_rejects_unknown_exporter(tmp_path):
    with pytest.raises(ValueError, match='exporter must be one of'):
        export_onnx(
            torch.nn.Identity(),
            tmp_path / 'x.onnx',
            torch.ones(1),
            exporter='jit',
        )
    assert not list(tmp_path.iterdir())


def _export_tool():
    spec = importlib.util.spec_from_file_location(
        'export_onnx_tool', ROOT / 'tools/deployment/export_onnx.py'
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    'extra,message',
    [
        (
            ['--shape', '-5', '7'],
            "--shape: expected an integer >= 32, got '-5'",
        ),
        (['--shape', '64', 'x'], '--shape: expected an integer >= 32'),
        (['--runs', '0'], '--runs: expected an integer >= 1'),
        (['--opset', '16'], '--opset: expected an integer >= 17'),
        (['--exporter', 'jit'], "--exporter: invalid choice: 'jit'"),
        (['--int8'], '--int8 needs --calib-dir'),
        (['--int8', '--calib-dir', 'missing_dir'], '--calib-dir: '),
        (['--image', 'missing.png'], '--image: cannot read'),
    ],
)
def test_cli_rejects_bad_arguments_before_any_work(
    tmp_path, capsys, extra, message
):
    with pytest.raises(SystemExit) as exc:
        _export_tool().parse_args(
            [str(SEG_CONFIG), '--out', str(tmp_path / 'x.onnx'), *extra]
        )
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_rejects_calibration_folder_without_images(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _export_tool().parse_args(
            [str(SEG_CONFIG), '--int8', '--calib-dir', str(tmp_path)]
        )
    assert exc.value.code == 2
    assert 'holds no image' in capsys.readouterr().err
