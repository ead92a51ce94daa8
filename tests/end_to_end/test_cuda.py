"""GPU acceptance: the CLIs, AMP, SyncBN over NCCL, CUDA graphs and the
compat layer on a CUDA device.

Every test here is marked ``cuda`` and skipped, with the reason, where
``torch.cuda.is_available()`` is False; the CPU suite covers the rest.
``tools/analysis/gpu_check.sh`` runs them (``pytest -m cuda``) and then
the GPU benchmarks. Training runs are a few dozen iterations on the
bundled Cityscapes frame and COCO images: the assertions are that they
run on the GPU with the requested precision and distributed setup, and
that the loss falls.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import litehrnet_seg  # noqa: F401  (registers modules, safe-loading globals)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.slow,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason='needs a CUDA device (torch.cuda.is_available() is False)',
    ),
]

ROOT = Path(__file__).resolve().parents[2]
SEG_CONFIG = (
    ROOT
    / 'configs'
    / 'litehrnet'
    / 'fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-128x256.py'
)
POSE_CONFIG = (
    ROOT
    / 'configs'
    / 'pose'
    / 'topdown-heatmap_litehrnet18_1xb12-120i_coco-sample-256x192.py'
)
MULTITASK_CONFIG = (
    ROOT / 'configs' / 'multitask' / 'segpose_litehrnet18_sample.py'
)
COCO = ROOT / 'tests' / 'data' / 'coco'
ITERS = 60


def run_cli(*args: str, cwd: Path, **env: str) -> str:
    """Run a command as a user would; fail with its output's tail."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    proc = subprocess.run(
        list(args),
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{args[:3]} failed:\n{output[-4000:]}'
    return output


def read_scalars(work_dir: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(work_dir.glob('*/vis_data/scalars.json'))
        for line in path.read_text().split('\n')
        if line.strip()
    ]


def losses(work_dir: Path, key: str = 'loss') -> list[float]:
    return [r[key] for r in read_scalars(work_dir) if key in r]


def read_test_metrics(work_dir: Path) -> dict:
    """Metrics of the (single) tools/test.py run in ``work_dir``."""
    files = [p for p in work_dir.glob('*/*.json') if 'mIoU' in p.read_text()]
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def seg_options(data_root: Path) -> list[str]:
    return [
        f'data_root={data_root}',
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
    ]


def schedule_options(iters: int, scheduler: int = 0) -> list[str]:
    return [
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        f'param_scheduler.{scheduler}.end={iters}',
        'default_hooks.logger.interval=5',
    ]


@pytest.fixture(scope='module')
def seg_amp(cityscapes_sample, tmp_path_factory) -> dict:
    """Seg sample config trained with --amp on the GPU."""
    tmp = tmp_path_factory.mktemp('seg_amp')
    work_dir = tmp / 'work_dir'
    log = run_cli(
        sys.executable,
        str(ROOT / 'tools/train.py'),
        str(SEG_CONFIG),
        '--amp',
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        *seg_options(cityscapes_sample),
        *schedule_options(ITERS),
        cwd=tmp,
    )
    return dict(
        tmp=tmp,
        work_dir=work_dir,
        log=log,
        ckpt=work_dir / f'iter_{ITERS}.pth',
    )


def test_seg_amp_training_loss_falls(seg_amp):
    values = losses(seg_amp['work_dir'])
    assert len(values) >= ITERS // 5 - 1, values
    assert values[-1] < 0.5 * values[0], values
    dumped = (seg_amp['work_dir'] / SEG_CONFIG.name).read_text()
    assert "type='AmpOptimWrapper'" in dumped
    assert "loss_scale='dynamic'" in dumped
    assert 'CUDA available: True' in seg_amp['log']


def test_test_tool_miou_on_cuda_equals_cpu(seg_amp, cityscapes_sample):
    mious = {}
    for device, env in (('cuda', {}), ('cpu', dict(CUDA_VISIBLE_DEVICES=''))):
        work_dir = seg_amp['tmp'] / f'test_{device}'
        run_cli(
            sys.executable,
            str(ROOT / 'tools/test.py'),
            str(SEG_CONFIG),
            str(seg_amp['ckpt']),
            '--work-dir',
            str(work_dir),
            '--cfg-options',
            *seg_options(cityscapes_sample),
            cwd=seg_amp['tmp'],
            **env,
        )
        mious[device] = read_test_metrics(work_dir)['mIoU']
    assert mious['cuda'] == pytest.approx(mious['cpu'], abs=0.1), mious
    assert mious['cuda'] > 20, mious  # it learned the frame


def test_pose_amp_training_loss_falls(tmp_path):
    work_dir = tmp_path / 'work_dir'
    coco = [
        f'train_dataloader.dataset.data_root={COCO}',
        f'val_dataloader.dataset.data_root={COCO}',
        f'test_dataloader.dataset.data_root={COCO}',
        f'val_evaluator.ann_file={COCO / "test_coco.json"}',
        f'test_evaluator.ann_file={COCO / "test_coco.json"}',
    ]
    run_cli(
        sys.executable,
        str(ROOT / 'tools/train.py'),
        str(POSE_CONFIG),
        '--amp',
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        *coco,
        'train_cfg.max_iters=60',
        'train_cfg.val_interval=60',
        'default_hooks.checkpoint.interval=60',
        'default_hooks.logger.interval=5',
        cwd=tmp_path,
    )
    values = losses(work_dir)
    assert len(values) >= 5, values
    assert values[-1] < 0.7 * values[0], values
    dumped = (work_dir / POSE_CONFIG.name).read_text()
    assert "type='AmpOptimWrapper'" in dumped


def test_syncbn_on_one_process_nccl_group(cityscapes_sample, tmp_path):
    work_dir = tmp_path / 'work_dir'
    log = run_cli(
        'bash',
        str(ROOT / 'tools/dist_train.sh'),
        str(SEG_CONFIG),
        '1',
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        *seg_options(cityscapes_sample),
        *schedule_options(20),
        'model.backbone.norm_cfg.type=SyncBN',
        'model.decode_head.norm_cfg.type=SyncBN',
        'env_cfg.dist_cfg.backend=nccl',
        cwd=tmp_path,
        PYTHON=sys.executable,
        PORT=str(29500 + os.getpid() % 1000),
    )
    assert 'Distributed training: True' in log
    # prepare_cpu_distributed's fallbacks must not have kicked in.
    assert 'No CUDA' not in log
    dumped = (work_dir / SEG_CONFIG.name).read_text()
    assert "type='SyncBN'" in dumped and "backend='nccl'" in dumped
    values = losses(work_dir)
    assert values and all(v == v for v in values), values  # finite, no NaN
    assert values[-1] < values[0], values


def test_multitask_sample_trains_both_tasks(cityscapes_sample, tmp_path):
    work_dir = tmp_path / 'work_dir'
    options = []
    for split in ('train', 'val', 'test'):
        datasets = f'{split}_dataloader.dataset.datasets'
        options += [
            f'{datasets}.seg.data_root={cityscapes_sample}',
            f'{datasets}.pose.data_root={COCO}',
        ]
    for split in ('val', 'test'):
        options.append(
            f'{split}_evaluator.1.metric.ann_file={COCO / "test_coco.json"}'
        )
    run_cli(
        sys.executable,
        str(ROOT / 'tools/train.py'),
        str(MULTITASK_CONFIG),
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        *options,
        'train_cfg.max_iters=60',
        'train_cfg.val_interval=60',
        'default_hooks.checkpoint.interval=60',
        'param_scheduler.1.end=60',
        cwd=tmp_path,
    )
    records = read_scalars(work_dir)
    seg = [
        r['seg.decode.loss_ce'] for r in records if 'seg.decode.loss_ce' in r
    ]
    pose = [r['pose.loss_kpt'] for r in records if 'pose.loss_kpt' in r]
    assert len(seg) >= 3 and len(pose) >= 3, (seg, pose)
    assert seg[-1] < seg[0] and pose[-1] < pose[0], (seg, pose)
    assert any('mIoU' in r for r in records)
    assert any('coco/AP' in r for r in records)


@pytest.fixture(scope='module')
def seg_model():
    from mmengine.model import revert_sync_batchnorm

    from litehrnet_seg.checkpoint import build_model
    from litehrnet_seg.deploy import TensorModel

    model = build_model(str(SEG_CONFIG))
    return TensorModel(revert_sync_batchnorm(model)).cuda().eval()


def test_cuda_graphs_replay_equals_eager(seg_model):
    from litehrnet_seg.deploy import optimize
    from litehrnet_seg.deploy.inference_optimizer import CUDAGraphModel

    fast = optimize(seg_model, ('fold_bn', 'cuda_graphs'))
    graphs = [m for m in fast.modules() if isinstance(m, CUDAGraphModel)]
    assert len(graphs) == 1
    gen = torch.Generator(device='cuda').manual_seed(0)
    a, b = (
        torch.randn(2, 3, 128, 256, device='cuda', generator=gen)
        for _ in range(2)
    )
    with torch.inference_mode():
        expected_a, expected_b = seg_model(a), seg_model(b)
        out_a = fast(a)
        out_b = fast(b)  # same shape: a replay with new input data
        assert len(graphs[0].graphs) == 1
        torch.testing.assert_close(out_a, expected_a, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(out_b, expected_b, atol=1e-4, rtol=1e-4)
        # Outputs are copies: the replay for b did not overwrite a's.
        assert not torch.equal(out_a, out_b)
        small = a[:1, :, :64, :128]
        torch.testing.assert_close(
            fast(small), seg_model(small), atol=1e-4, rtol=1e-4
        )
        assert len(graphs[0].graphs) == 2  # a new shape, a new capture
        with torch.autocast('cuda', dtype=torch.float16):
            half = fast(a)
        assert len(graphs[0].graphs) == 3
        assert (half.float() - expected_a).abs().max() < 0.05


def test_benchmark_in_cuda_mode(tmp_path, capsys):
    import importlib.util

    path = ROOT / 'tools/analysis/benchmark.py'
    spec = importlib.util.spec_from_file_location('benchmark_tool', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'bench.json'
    rows = tool.main(
        [
            str(SEG_CONFIG),
            '--device',
            'cuda',
            '--tiny',
            '--variants',
            'eager',
            'channels_last',
            'cuda_graphs',
            '--precision',
            'fp32',
            'fp16',
            '--train',
            '--amp',
            '--json',
            str(out),
        ]
    )
    assert [(r['variant'], r['precision']) for r in rows] == [
        ('eager', 'fp32'),
        ('eager', 'fp16'),
        ('channels_last', 'fp32'),
        ('cuda_graphs', 'fp32'),
        ('train-fp32', 'fp32'),
        ('train-amp', 'amp'),
    ]
    for r in rows:
        assert r['device'] == 'cuda' and r['median_ms'] > 0
        assert r['peak_mib'] > 0  # the CUDA allocator's peak
    assert json.loads(out.read_text())['meta']['device'] == 'cuda'


def test_compat_ops_without_full_mmcv_run_on_cuda():
    """The pure-PyTorch fallback ops (used with mmcv-lite) on CUDA tensors
    equal their CPU results."""
    from litehrnet_seg import compat

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 19, generator=gen)
    target = torch.randint(0, 19, (8,), generator=gen)
    weight = torch.rand(19, generator=gen)
    for reduction in ('none', 'mean', 'sum'):
        cpu = compat.sigmoid_focal_loss(
            logits, target, 2.0, 0.25, weight, reduction
        )
        gpu = compat.sigmoid_focal_loss(
            logits.cuda(), target.cuda(), 2.0, 0.25, weight.cuda(), reduction
        )
        assert gpu.is_cuda
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-6, rtol=1e-5)
    import mmcv.ops

    feats = torch.randn(2, 4, 16, 16, generator=gen)
    points = torch.rand(2, 10, 2, generator=gen)
    cpu = mmcv.ops.point_sample(feats, points, align_corners=False)
    gpu = mmcv.ops.point_sample(
        feats.cuda(), points.cuda(), align_corners=False
    )
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=1e-5)


def _compiled_mmcv_ops() -> bool:
    try:
        import mmcv._ext  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(
    not _compiled_mmcv_ops(),
    reason='full mmcv (compiled mmcv._ext) is not installed: only mmcv-lite',
)
def test_compat_with_full_mmcv_leaves_compiled_ops_and_matches_them():
    import mmcv.ops

    from litehrnet_seg import compat

    # With compiled ops nothing is replaced ...
    assert compat.install_mmcv_ops_fallback() is False
    assert mmcv.ops.sigmoid_focal_loss is not compat.sigmoid_focal_loss
    # ... and the fallback equals mmcv's CUDA kernel.
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 19, generator=gen).cuda()
    target = torch.randint(0, 19, (8,), generator=gen).cuda()
    for reduction in ('none', 'mean', 'sum'):
        kernel = mmcv.ops.sigmoid_focal_loss(
            logits, target, 2.0, 0.25, None, reduction
        )
        ours = compat.sigmoid_focal_loss(
            logits, target, 2.0, 0.25, None, reduction
        )
        torch.testing.assert_close(ours, kernel, atol=1e-6, rtol=1e-5)
