"""End to end on the real bundled Cityscapes frame, through the real CLIs.

convert (tools/dataset_converters/cityscapes.py) -> train (tools/train.py)
-> test (tools/test.py) -> resume (tools/train.py --resume), each in its
own process exactly as a user runs them. Overfitting one frame is the
point: the loss must fall and mIoU must rise far above chance.
"""

import json
from pathlib import Path

import pytest
import torch

import litehrnet_seg  # noqa: F401  (safe-loading allowlist for torch.load)

pytestmark = pytest.mark.slow  # trains through the CLIs

ROOT = Path(__file__).resolve().parents[2]
CONFIG = (
    ROOT
    / 'configs'
    / 'litehrnet'
    / ('fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-128x256.py')
)
ITERS = 100
CHANCE_MIOU = 100 / 19  # uniform guessing over the 19 Cityscapes classes


def read_scalars(work_dir: Path) -> list[dict]:
    """All logged records of every run in ``work_dir``, oldest first."""
    records = []
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        records += [
            json.loads(line)
            for line in path.read_text().split('\n')
            if line.strip()
        ]
    return records


@pytest.fixture(scope='module')
def trained(tmp_path_factory, run_tool, cityscapes_sample):
    """A 100-iteration training run on the converted sample."""
    tmp = tmp_path_factory.mktemp('e2e')
    data_root = cityscapes_sample
    work_dir = tmp / 'work_dir'
    options = [
        f'data_root={data_root}',
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        f'train_cfg.max_iters={ITERS}',
        f'train_cfg.val_interval={ITERS // 2}',
        f'default_hooks.checkpoint.interval={ITERS // 2}',
        f'param_scheduler.0.end={ITERS}',
        'default_hooks.logger.interval=10',
    ]
    run_tool(
        str(ROOT / 'tools/train.py'),
        str(CONFIG),
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        *options,
        cwd=tmp,
    )
    return dict(tmp=tmp, work_dir=work_dir, options=options)


def test_training_learns_the_frame(trained):
    records = read_scalars(trained['work_dir'])
    losses = [r['loss'] for r in records if 'loss' in r]
    mious = [r['mIoU'] for r in records if 'mIoU' in r]
    assert len(losses) >= 5 and len(mious) == 2
    assert losses[-1] < 0.25 * losses[0], losses
    assert mious[-1] > 10 * CHANCE_MIOU, mious
    assert mious[-1] >= mious[0] - 1.0, mious


def test_test_tool_reproduces_miou_and_writes_overlay(trained, run_tool):
    work_dir, tmp = trained['work_dir'], trained['tmp']
    val_miou = [r['mIoU'] for r in read_scalars(work_dir) if 'mIoU' in r][-1]
    test_dir = tmp / 'test_dir'
    show_dir = tmp / 'show'
    run_tool(
        str(ROOT / 'tools/test.py'),
        str(CONFIG),
        str(work_dir / f'iter_{ITERS}.pth'),
        '--work-dir',
        str(test_dir),
        '--show-dir',
        str(show_dir),
        '--cfg-options',
        *trained['options'][:4],
        cwd=tmp,
    )
    results = [
        json.loads(p.read_text())
        for p in test_dir.glob('*/*.json')
        if 'mIoU' in p.read_text()
    ]
    assert len(results) == 1
    assert results[0]['mIoU'] == pytest.approx(val_miou, abs=0.01)
    overlays = list(show_dir.rglob('*.png'))
    assert len(overlays) == 1 and overlays[0].stat().st_size > 1000


def test_test_tool_optimize_scores_like_the_plain_model(trained, run_tool):
    """``tools/test.py --optimize`` (BN folded, channels_last) gives the
    plain model's mIoU."""
    work_dir, tmp = trained['work_dir'], trained['tmp']
    val_miou = [r['mIoU'] for r in read_scalars(work_dir) if 'mIoU' in r][-1]
    test_dir = tmp / 'test_optimized'
    run_tool(
        str(ROOT / 'tools/test.py'),
        str(CONFIG),
        str(work_dir / f'iter_{ITERS}.pth'),
        '--work-dir',
        str(test_dir),
        '--optimize',
        '--cfg-options',
        *trained['options'][:4],
        cwd=tmp,
    )
    results = [
        json.loads(p.read_text())
        for p in test_dir.glob('*/*.json')
        if 'mIoU' in p.read_text()
    ]
    assert len(results) == 1
    assert results[0]['mIoU'] == pytest.approx(val_miou, abs=0.01)


def test_resume_continues_from_last_checkpoint(trained, run_tool):
    work_dir, tmp = trained['work_dir'], trained['tmp']
    more = ITERS + 20
    options = [
        o
        for o in trained['options']
        if not o.startswith(('train_cfg.max_iters', 'param_scheduler'))
    ]
    proc = run_tool(
        str(ROOT / 'tools/train.py'),
        str(CONFIG),
        '--work-dir',
        str(work_dir),
        '--resume',
        '--cfg-options',
        *options,
        f'train_cfg.max_iters={more}',
        f'param_scheduler.0.end={ITERS}',
        cwd=tmp,
    )
    log = proc.stdout + proc.stderr
    assert f'resumed epoch: 0, iter: {ITERS}' in log
    # Counting continued from the checkpoint rather than restarting at 1.
    iters = [r['iter'] for r in read_scalars(work_dir) if 'loss' in r]
    assert iters[-1] == more and 1 not in iters[iters.index(ITERS) + 1 :]
    final = torch.load(work_dir / f'iter_{more}.pth', map_location='cpu')
    assert final['meta']['iter'] == more
    assert 'optimizer' in final and 'param_schedulers' in final
