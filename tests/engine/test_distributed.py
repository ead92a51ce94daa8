"""Real multi-process runs on CPUs: torchrun + gloo through the same
``tools/dist_train.sh`` / ``tools/dist_test.sh`` users run.

* 2 processes x batch 2 take the same first SGD step as 1 process x batch 4
  (DDP averages the gradients; BN frozen so samples are independent);
* a SyncBN config runs on CPUs (converted to BN, with a warning) and
  validates a dataset smaller than the world size;
* distributed testing gathers every sample exactly once (5 MPII images on
  2 ranks) and scores exactly like one process.
"""

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import litehrnet_seg  # noqa: F401  (safe-loading allowlist)

ROOT = Path(__file__).resolve().parents[2]
COCO = ROOT / 'tests/data/coco'
MPII = ROOT / 'tests/data/mpii'
POSE_CFG = ROOT / (
    'configs/pose/topdown-heatmap_litehrnet18_1xb12-120i_coco-sample-256x192.py'
)
MPII_CFG = ROOT / (
    'configs/pose/topdown-heatmap_litehrnet18_1xb5-120i_mpii-sample-256x256.py'
)
SEG_CFG = ROOT / (
    'configs/litehrnet/'
    'fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-128x256.py'
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a tools/ script (a .sh through bash with PYTHON set)."""
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        OMP_NUM_THREADS='1',
        PYTHON=sys.executable,
        PORT=str(free_port()),
    )
    cmd = ['bash'] if script.endswith('.sh') else [sys.executable]
    proc = subprocess.run(
        [*cmd, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f'{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    )
    return proc


def init_checkpoint(config: Path, path: Path) -> Path:
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def pose_options(init: Path, batch: int) -> list[str]:
    return [
        f'train_dataloader.dataset.data_root={COCO}',
        f'val_dataloader.dataset.data_root={COCO}',
        f'val_evaluator.ann_file={COCO / "test_coco.json"}',
        f'train_dataloader.batch_size={batch}',
        'train_dataloader.sampler.shuffle=False',
        # Frozen BN: each sample's loss is independent of its batch mates.
        'model.backbone.norm_eval=True',
        'optim_wrapper.optimizer.type=SGD',
        'optim_wrapper.optimizer.lr=0.1',
        'param_scheduler=[]',
        'train_cfg.max_iters=1',
        'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1',
        f'load_from={init}',
        'randomness.deterministic=True',
    ]


def weights(path: Path) -> dict:
    state = torch.load(path, map_location='cpu')['state_dict']
    return {k: v for k, v in state.items() if v.is_floating_point()}


@pytest.mark.slow
def test_two_processes_take_the_same_first_step_as_one(tmp_path):
    init = init_checkpoint(POSE_CFG, tmp_path / 'init.pth')
    single, double = tmp_path / 'single', tmp_path / 'double'
    run(
        'tools/train.py',
        str(POSE_CFG),
        '--work-dir',
        str(single),
        '--cfg-options',
        *pose_options(init, 4),
        cwd=tmp_path,
    )
    proc = run(
        'tools/dist_train.sh',
        str(POSE_CFG),
        '2',
        '--work-dir',
        str(double),
        '--cfg-options',
        *pose_options(init, 2),
        cwd=tmp_path,
    )
    w0 = weights(init)
    w1, w2 = weights(single / 'iter_1.pth'), weights(double / 'iter_1.pth')
    step1 = torch.cat([(w1[k] - w0[k]).flatten() for k in w0])
    step2 = torch.cat([(w2[k] - w0[k]).flatten() for k in w0])
    assert step1.abs().max() > 1e-6  # a real step was taken
    rel = (step1 - step2).abs().max() / step1.abs().max()
    assert rel < 1e-4, f'1 vs 2 processes: relative step difference {rel}'
    print(
        f'1 vs 2 processes: max |step| {step1.abs().max():.3e}, max step '
        f'difference {(step1 - step2).abs().max():.3e} (relative {rel:.2e})'
    )
    # Both ranks ran and validation reported the usual COCO metrics.
    log = proc.stdout + proc.stderr
    assert 'coco/AP:' in log
    # mmengine's words for world size 2.
    assert 'Distributed training: True' in log and 'GPU number: 2' in log


@pytest.mark.slow
def test_syncbn_config_trains_and_validates_on_two_cpu_processes(
    tmp_path, cityscapes_sample
):
    data_root = cityscapes_sample
    proc = run(
        'tools/dist_train.sh',
        str(SEG_CFG),
        '2',
        '--work-dir',
        str(tmp_path / 'work'),
        '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        'model.backbone.norm_cfg.type=SyncBN',
        'model.decode_head.norm_cfg.type=SyncBN',
        'train_dataloader.batch_size=1',
        'train_cfg.max_iters=2',
        'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
        cwd=tmp_path,
    )
    log = proc.stdout + proc.stderr
    assert 'SyncBN cannot synchronise CPU tensors' in log
    # One val frame on two ranks: padded for the sampler, gathered once.
    assert 'mIoU:' in log
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()


@pytest.mark.slow
def test_distributed_test_gathers_each_sample_once(tmp_path):
    ckpt = init_checkpoint(MPII_CFG, tmp_path / 'mpii.pth')
    options = [
        f'test_dataloader.dataset.data_root={MPII}',
        'test_dataloader.batch_size=2',
    ]
    outs = {}
    for procs in (1, 2):
        out = tmp_path / f'out{procs}'
        script = 'tools/test.py' if procs == 1 else 'tools/dist_test.sh'
        world = [] if procs == 1 else ['2']
        args = [str(MPII_CFG), str(ckpt), *world, '--out', str(out)]
        run(
            script,
            *args,
            '--work-dir',
            str(tmp_path / f'work{procs}'),
            '--cfg-options',
            *options,
            cwd=tmp_path,
        )
        with open(out / 'results.pkl', 'rb') as f:
            outs[procs] = pickle.load(f)
    # 5 images on 2 ranks: the sampler pads rank 1; the gather drops the
    # padding, so each image appears once, in dataset order.
    names = [Path(r['img_path']).name for r in outs[2]]
    assert len(names) == 5 and len(set(names)) == 5
    assert names == [Path(r['img_path']).name for r in outs[1]]
    for a, b in zip(outs[1], outs[2], strict=True):
        ka = a['pred_instances']['keypoints']
        kb = b['pred_instances']['keypoints']
        assert torch.allclose(torch.as_tensor(ka), torch.as_tensor(kb))
