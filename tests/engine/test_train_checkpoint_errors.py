"""tools/train.py refuses checkpoints that do not fit, before training.

The wrong checkpoints are built here from the configs with random
weights. Each case runs the real CLI (a subprocess) on the COCO sample and
checks the exit status and that the message names the file and the
mismatch.
"""

import errno
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import litehrnet_seg  # noqa: F401  (registries)
from litehrnet_seg.checkpoint import build_model
from litehrnet_seg.engine import atomic_backend, find_resume_checkpoint

ROOT = Path(__file__).resolve().parents[2]
COCO = ROOT / 'tests/data/coco'
POSE18 = ROOT / (
    'configs/pose/topdown-heatmap_litehrnet18_1xb12-120i_coco-sample-256x192.py'
)
POSE30 = (
    ROOT
    / 'configs/pose/topdown-heatmap_litehrnet30_8xb64-210e_coco-256x192.py'
)
SEG18 = ROOT / (
    'configs/litehrnet/fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py'
)
OPTIONS = [
    f'train_dataloader.dataset.data_root={COCO}',
    f'val_dataloader.dataset.data_root={COCO}',
    f'val_evaluator.ann_file={COCO / "test_coco.json"}',
    'train_dataloader.batch_size=2',
    'train_dataloader.num_workers=0',
    'train_cfg.max_iters=1',
    'train_cfg.val_begin=100',  # no validation
    'default_hooks.checkpoint.interval=1',
]


def random_checkpoint(config: Path, path: Path) -> Path:
    """A checkpoint of ``config``'s model with its initial weights."""
    torch.manual_seed(0)
    model = build_model(str(config))
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def train(*args: str, options=(), cwd: Path) -> subprocess.CompletedProcess:
    """Run tools/train.py on the pose sample config."""
    return subprocess.run(
        [sys.executable, str(ROOT / 'tools/train.py'), str(POSE18), *args]
        + ['--cfg-options', *OPTIONS, *options],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_load_from_another_architecture_is_refused(tmp_path):
    wrong = random_checkpoint(POSE30, tmp_path / 'l30_pose.pth')
    work_dir = tmp_path / 'work'
    proc = train(
        '--work-dir',
        str(work_dir),
        options=[f'load_from={wrong}'],
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert str(wrong) in proc.stderr and POSE18.name in proc.stderr
    assert 'unexpected key(s)' in proc.stderr  # L30's extra blocks
    assert 'Traceback' not in proc.stderr
    assert not list(work_dir.glob('*.pth'))  # no training happened


@pytest.mark.slow
def test_load_from_other_task_needs_allow_new_head(tmp_path):
    seg = random_checkpoint(SEG18, tmp_path / 'l18_seg.pth')
    refused = train(
        '--work-dir',
        str(tmp_path / 'refused'),
        options=[f'load_from={seg}'],
        cwd=tmp_path,
    )
    assert refused.returncode == 1
    assert str(seg) in refused.stderr and 'decode_head' in refused.stderr

    work_dir = tmp_path / 'opt_in'
    proc = train(
        '--work-dir',
        str(work_dir),
        '--allow-new-head',
        options=[f'load_from={seg}'],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'allow_new_head' in log and 'skipped' in log  # says what it left
    assert (work_dir / 'iter_1.pth').is_file()


@pytest.mark.slow
def test_resume_after_an_architecture_change_says_so(tmp_path):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    old = random_checkpoint(POSE30, work_dir / 'iter_1.pth')
    (work_dir / 'last_checkpoint').write_text(str(old))
    proc = train('--work-dir', str(work_dir), '--resume', cwd=tmp_path)
    assert proc.returncode == 1
    assert 'differs from the model of the config' in proc.stderr
    assert str(old) in proc.stderr and 'unexpected key(s)' in proc.stderr
    assert 'optimizer' not in proc.stderr


@pytest.mark.slow
def test_resume_in_a_copied_work_dir_pointing_outside_is_refused(tmp_path):
    work_dir = tmp_path / 'copy'
    work_dir.mkdir()
    original = tmp_path / 'original' / 'iter_8.pth'
    (work_dir / 'last_checkpoint').write_text(str(original))
    proc = train('--work-dir', str(work_dir), '--resume', cwd=tmp_path)
    assert proc.returncode == 1
    assert str(original) in proc.stderr and 'outside the work_dir' in (
        proc.stderr
    )


@pytest.mark.slow
def test_resume_in_a_copied_work_dir_uses_its_own_copy(tmp_path):
    work_dir = tmp_path / 'copy'
    work_dir.mkdir()
    local = random_checkpoint(POSE18, work_dir / 'iter_8.pth')
    original = tmp_path / 'original' / 'iter_8.pth'
    (work_dir / 'last_checkpoint').write_text(str(original))
    warnings = []
    found = find_resume_checkpoint(str(work_dir), log=warnings.append)
    assert found == str(local)
    assert str(original) in warnings[0] and 'copied work_dir' in warnings[0]


@pytest.mark.slow
def test_work_dir_that_is_a_file_is_a_usage_error(tmp_path):
    not_a_dir = tmp_path / 'notes.txt'
    not_a_dir.write_text('x')
    proc = train('--work-dir', str(not_a_dir), cwd=tmp_path)
    assert proc.returncode == 2
    assert str(not_a_dir) in proc.stderr and 'existing file' in proc.stderr
    assert 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_disk_full_names_the_checkpoint_not_written(
    tmp_path, monkeypatch, capsys
):
    spec = importlib.util.spec_from_file_location(
        'train_tool', ROOT / 'tools/train.py'
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    def disk_full(path: str, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic_backend, 'write_new_file', disk_full)
    work_dir = tmp_path / 'work'
    with pytest.raises(SystemExit) as stop:
        tool.main(
            [str(POSE18), '--work-dir', str(work_dir), '--cfg-options']
            + OPTIONS
        )
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert str(work_dir / 'iter_1.pth') in err
    assert 'No space left on device' in err
    assert not list(work_dir.glob('*.pth')) and not list(work_dir.glob('.*'))
