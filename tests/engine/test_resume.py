"""Training survives interruption: atomic checkpoints (the 'local_atomic'
file backend), exact resume and SIGTERM pre-emption (the safe train loops),
the newest intact checkpoint on --resume, and a kill at any time.

In-process tests use a toy model (dropout + random augmentation, so the
random state matters) and run in about a second each. The subprocess tests
run ``tools/train.py`` on the Cityscapes sample config (64x128 frames to
keep them quick) and compare the logged per-iteration losses of an
uninterrupted run with those of a killed-and-resumed one.
"""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

import litehrnet_seg  # noqa: F401  (loops, backend, safe-loading allowlist)
from litehrnet_seg.checkpoint import CheckpointError, read_checkpoint
from litehrnet_seg.engine import (
    CheckpointWriteError,
    atomic_backend,
    find_resume_checkpoint,
    remove_stale_temp_files,
)

ROOT = Path(__file__).resolve().parents[2]
SEG_CONFIG = (
    ROOT
    / 'configs'
    / 'litehrnet'
    / 'fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-128x256.py'
)


# -- toy training ------------------------------------------------------------
class ToyDataset(torch.utils.data.Dataset):
    """16 fixed points; __getitem__ adds noise from numpy's and Python's
    global generators, like a random augmentation run in the main
    process (num_workers=0)."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(1)
        self.x = torch.randn(16, 4, generator=generator)
        self.y = self.x.sum(1, keepdim=True)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        noise = torch.from_numpy(np.random.randn(4).astype(np.float32))
        scale = random.uniform(0.9, 1.1)
        return dict(inputs=self.x[i] * scale + 0.1 * noise, data_samples=i)


class ToyModel(BaseModel):
    """Linear regression behind dropout (torch's global generator)."""

    def __init__(self, targets: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer('targets', targets)
        self.drop = nn.Dropout(0.3)
        with torch.random.fork_rng():  # same init whatever ran before
            torch.manual_seed(0)
            self.linear = nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(self.drop(torch.stack(inputs)))
        if mode == 'loss':
            y = self.targets[torch.tensor(data_samples)]
            return dict(loss_mse=((out - y) ** 2).mean())
        return out


class RecordLoss(Hook):
    """Collects ``{iteration: loss}`` of a run."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.losses: dict[int, float] = {}

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        self.losses[runner.iter + 1] = float(outputs['loss'].detach())


class CrashAfter(Hook):
    """Raises after iteration ``at`` (after its checkpoint is written),
    standing in for the process being killed there."""

    priority = 'LOWEST'

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        if runner.iter + 1 == self.at:
            raise KeyboardInterrupt(
                f'simulated kill after iteration {self.at}'
            )


class SignalAt(Hook):
    """Sends ``signum`` to this process after iteration ``at``."""

    priority = 'HIGH'

    def __init__(self, at: int, signum: int) -> None:
        self.at, self.signum = at, signum

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), self.signum)


def problem(path: Path) -> str | None:
    """Why ``path`` is not a readable checkpoint, or None."""
    try:
        read_checkpoint(str(path))
    except CheckpointError as e:
        return str(e)
    return None


def toy_runner(
    work_dir: Path,
    *,
    max_iters: int = 6,
    interval: int = 2,
    by_epoch: bool = False,
    resume: bool = False,
    exact: bool = True,
    hooks: tuple = (),
    log: list | None = None,
) -> Runner:
    """A Runner on the toy problem with the safe loop and atomic saves;
    ``resume`` picks the checkpoint as tools/train.py does."""
    dataset = ToyDataset()
    sampler = 'DefaultSampler' if by_epoch else 'InfiniteSampler'
    if by_epoch:  # 16 samples / batch 2 = 8 iterations per epoch
        train_cfg = dict(
            type='SafeEpochBasedTrainLoop', max_epochs=max_iters // 8
        )
    else:
        train_cfg = dict(type='SafeIterBasedTrainLoop', max_iters=max_iters)
    train_cfg['restore_rng'] = exact
    load_from = None
    if resume:
        remove_stale_temp_files(str(work_dir))
        log = [] if log is None else log
        load_from = find_resume_checkpoint(str(work_dir), log=log.append)
    return Runner(
        model=ToyModel(dataset.y),
        work_dir=str(work_dir),
        experiment_name=f'toy_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=dataset,
            sampler=dict(type=sampler, shuffle=True),
            batch_size=2,
            num_workers=0,
            collate_fn=pseudo_collate,
        ),
        train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        param_scheduler=dict(
            type='MultiStepLR', milestones=[4], gamma=0.5, by_epoch=False
        ),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                backend_args=dict(backend='local_atomic'),
                interval=interval,
                by_epoch=by_epoch,
                max_keep_ckpts=2,
            ),
            logger=dict(type='LoggerHook', interval=1),
        ),
        custom_hooks=list(hooks),
        randomness=dict(seed=0),
        resume=resume,
        load_from=load_from,
        default_scope='mmseg',
    )


def train(runner: Runner) -> dict[int, float]:
    """Train; return the per-iteration losses."""
    record = RecordLoss()
    runner.register_hook(record)
    runner.train()
    return record.losses


def log_text(work_dir: Path) -> str:
    return '\n'.join(p.read_text() for p in work_dir.glob('*/*.log'))


def pointer(work_dir: Path) -> Path:
    return Path((work_dir / 'last_checkpoint').read_text().strip())


# -- atomic checkpoints ------------------------------------------------------
def test_disk_full_while_saving_keeps_previous_checkpoint(
    tmp_path, monkeypatch
):
    real_write = atomic_backend.write_new_file

    def disk_full_while_writing_iter_4(path: str, data: bytes) -> None:
        if '.iter_4.pth.' in path:
            Path(path).write_bytes(data[: len(data) // 2])  # partial bytes
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, data)

    monkeypatch.setattr(
        atomic_backend, 'write_new_file', disk_full_while_writing_iter_4
    )
    with pytest.raises(CheckpointWriteError) as error:
        train(toy_runner(tmp_path, max_iters=4))
    # Names the checkpoint that could not be written, and why.
    assert str(tmp_path / 'iter_4.pth') in str(error.value)
    assert 'No space left on device' in str(error.value)

    assert not (tmp_path / 'iter_4.pth').exists()  # nothing partial there
    assert not list(tmp_path.glob('.*.tmp'))  # temp file cleaned up
    assert pointer(tmp_path) == tmp_path / 'iter_2.pth'
    assert problem(tmp_path / 'iter_2.pth') is None
    ckpt = torch.load(tmp_path / 'iter_2.pth', map_location='cpu')
    assert ckpt['meta']['iter'] == 2 and 'resume_state' in ckpt

    # --resume continues from iter_2 once saving works again.
    monkeypatch.setattr(atomic_backend, 'write_new_file', real_write)
    losses = train(toy_runner(tmp_path, max_iters=4, resume=True))
    assert sorted(losses) == [3, 4]
    assert pointer(tmp_path) == tmp_path / 'iter_4.pth'


def test_resume_falls_back_from_corrupt_newest_checkpoint(tmp_path):
    train(toy_runner(tmp_path, max_iters=4))
    newest = tmp_path / 'iter_4.pth'
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) * 2 // 3])  # truncated copy
    assert problem(newest) is not None
    stale = tmp_path / '.iter_6.pth.4242.deadbeef.tmp'  # SIGKILL mid-save
    stale.write_bytes(b'partial')

    warnings = []
    runner = toy_runner(tmp_path, max_iters=6, resume=True, log=warnings)
    losses = train(runner)

    assert f'Cannot resume from {newest}' in warnings[0], warnings
    assert 'resumed epoch: 0, iter: 2' in log_text(tmp_path)
    assert sorted(losses) == [3, 4, 5, 6]
    assert not stale.exists()
    assert pointer(tmp_path) == tmp_path / 'iter_6.pth'
    assert problem(tmp_path / 'iter_6.pth') is None


def test_resume_without_any_intact_checkpoint_refuses(tmp_path):
    train(toy_runner(tmp_path, max_iters=2))
    (tmp_path / 'iter_2.pth').write_bytes(b'')
    with pytest.raises(RuntimeError, match='no intact checkpoint'):
        find_resume_checkpoint(str(tmp_path), log=lambda message: None)


def test_old_checkpoints_are_deleted_only_after_the_new_one_is_saved(
    tmp_path,
):
    train(toy_runner(tmp_path, max_iters=6))
    names = sorted(p.name for p in tmp_path.glob('*.pth'))
    assert names == ['iter_4.pth', 'iter_6.pth']  # max_keep_ckpts=2


# -- exact resume (toy, in process) ---------------------------------------
@pytest.mark.parametrize('exact', [True, False], ids=['restore', 'reseed'])
def test_resume_reproduces_losses_with_random_state(tmp_path, exact):
    full = train(toy_runner(tmp_path / 'full', max_iters=6, interval=3))
    part = tmp_path / 'part'
    crash = CrashAfter(3)
    with pytest.raises(KeyboardInterrupt):
        train(toy_runner(part, interval=3, exact=exact, hooks=[crash]))
    rest = train(toy_runner(part, interval=3, exact=exact, resume=True))
    assert sorted(rest) == [4, 5, 6]
    same = all(rest[i] == full[i] for i in rest)
    # Without restore_rng mmengine re-seeds on resume: dropout masks and the
    # augmentation noise after iteration 3 differ from the full run.
    assert same is exact, (full, rest)


def test_sigterm_mid_epoch_saves_and_resumes_exactly(tmp_path):
    # Epoch-based: 8 iterations per epoch, SIGTERM in epoch 2 at iter 11.
    full = train(toy_runner(tmp_path / 'full', max_iters=16, by_epoch=True))
    part = tmp_path / 'part'
    signal_hook = SignalAt(11, signal.SIGTERM)
    with pytest.raises(SystemExit) as stop:
        train(
            toy_runner(part, max_iters=16, by_epoch=True, hooks=[signal_hook])
        )
    assert stop.value.code == 0
    assert pointer(part) == part / 'iter_11.pth'
    ckpt = torch.load(part / 'iter_11.pth', map_location='cpu')
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['iter'] == 11
    assert ckpt['resume_state']['epoch_batches_done'] == 3
    assert 'Received SIGTERM: saved checkpoint' in log_text(part)
    # The loop put the previous handler back on its way out.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    rest = train(toy_runner(part, max_iters=16, by_epoch=True, resume=True))
    assert sorted(rest) == list(range(12, 17))
    assert all(rest[i] == full[i] for i in rest), (full, rest)


WORKERS_SCRIPT = '''
import os, signal, subprocess, sys, time
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
sys.path.insert(0, {tests!r})
from test_resume import ToyDataset, ToyModel

init_default_scope('mmseg')


class SlurmStyleSigterm(Hook):
    """After iteration 3, SIGTERM the whole process group (training process
    and its dataloader workers) from another process, as slurmstepd does."""

    priority = 'HIGH'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == 3:
            group = os.getpgid(0)
            subprocess.run([sys.executable, '-c',
                            f'import os; os.killpg({{group}}, 15)'],
                           start_new_session=True)
            time.sleep(0.5)  # workers would die now, before the next batch


Runner(
    model=ToyModel(ToyDataset().y),
    work_dir=sys.argv[1],
    train_dataloader=dict(
        dataset=ToyDataset(), batch_size=2, num_workers=2,
        persistent_workers=sys.argv[2] == '1', collate_fn=pseudo_collate,
        sampler=dict(type='InfiniteSampler', shuffle=True)),
    train_cfg=dict(type='SafeIterBasedTrainLoop', max_iters=50),
    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
    default_hooks=dict(checkpoint=dict(
        type='CheckpointHook', backend_args=dict(backend='local_atomic'),
        by_epoch=False, interval=100)),
    custom_hooks=[SlurmStyleSigterm()],
    default_scope='mmseg',
).train()
'''


@pytest.mark.slow
@pytest.mark.parametrize('persistent', [False, True], ids=['', 'persistent'])
def test_sigterm_to_the_whole_job_with_dataloader_workers(
    tmp_path, persistent
):
    """Slurm signals every process of the job. Unprotected workers die and
    the main process raises 'DataLoader worker ... is killed by signal'
    before it can save; the safe loop's workers ignore signals not sent by the
    training process, which saves, shuts them down and exits."""
    script = tmp_path / 'workers.py'
    script.write_text(WORKERS_SCRIPT.format(tests=str(Path(__file__).parent)))
    work_dir = tmp_path / 'work_dir'
    proc = subprocess.run(
        [sys.executable, str(script), str(work_dir), str(int(persistent))],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        start_new_session=True,  # its own process group, like a job
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, log
    assert 'Received SIGTERM: saved checkpoint' in log
    assert pointer(work_dir) == work_dir / 'iter_3.pth'
    assert problem(work_dir / 'iter_3.pth') is None


# -- the real CLI on the Cityscapes sample (subprocesses) -------------------
SMALL_CONFIG = """
_base_ = {base!r}
crop_size = (64, 128)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
"""

KILL_CONFIG = """
_base_ = './small.py'
custom_imports = dict(
    imports=['litehrnet_seg', 'kill_after_iter_hook'],
    allow_failed_imports=False,
)
default_hooks = dict(kill=dict(type='KillAfterIterHook', at={at}))
"""

KILL_HOOK = '''
import os
import signal

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class KillAfterIterHook(Hook):
    """Test only: SIGKILL this process right after iteration ``at``
    (after its checkpoint is written: this hook runs last)."""

    priority = 'LOWEST'

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
'''

ITERS = 8
KILL_AT = 4


def read_losses(work_dir: Path) -> dict[int, float]:
    """``{iter: loss}`` from every scalars.json in ``work_dir``; a later
    run's value for an iteration replaces an earlier one."""
    losses = {}
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # being written right now
                continue
            if 'loss' in record:
                losses[record['iter']] = record['loss']
    return losses


@pytest.fixture(scope='module')
def seg_setup(tmp_path_factory, run_tool, cityscapes_sample):
    """Converted sample, small derived config, test hook module, and an
    uninterrupted reference run."""
    tmp = tmp_path_factory.mktemp('resume')
    data_root = cityscapes_sample
    (tmp / 'small.py').write_text(SMALL_CONFIG.format(base=str(SEG_CONFIG)))
    (tmp / 'kill_after_iter_hook.py').write_text(KILL_HOOK)
    (tmp / 'small_kill.py').write_text(KILL_CONFIG.format(at=KILL_AT))
    options = [
        f'data_root={data_root}',
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        f'train_cfg.max_iters={ITERS}',
        'train_cfg.val_begin=100000',  # no validation: losses only
        f'default_hooks.checkpoint.interval={KILL_AT}',
        f'param_scheduler.0.end={ITERS}',
        'default_hooks.logger.interval=1',
        'log_processor.window_size=1',  # log each iteration's own loss
        'randomness.seed=0',
        'randomness.deterministic=True',
    ]
    setup = dict(tmp=tmp, options=options)
    start = time.monotonic()
    proc = train_cli(setup, tmp / 'full')
    assert proc.wait(timeout=600) == 0, output(tmp / 'full')
    setup['full'] = read_losses(tmp / 'full')
    setup['full_seconds'] = time.monotonic() - start
    assert sorted(setup['full']) == list(range(1, ITERS + 1))
    return setup


def train_cli(
    setup: dict, work_dir: Path, *extra: str, config: str = 'small.py'
) -> subprocess.Popen:
    """Start tools/train.py on ``config`` (in the setup's folder) in the
    background; its output goes to ``<work_dir>.out``."""
    work_dir.parent.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), str(setup['tmp'])]),
        OMP_NUM_THREADS='1',
        PYTHONUNBUFFERED='1',
    )
    command = [
        sys.executable,
        str(ROOT / 'tools/train.py'),
        str(setup['tmp'] / config),
        '--work-dir',
        str(work_dir),
        *extra,
        '--cfg-options',
        *setup['options'],
    ]
    with open(f'{work_dir}.out', 'a') as out:  # the child keeps its copy
        return subprocess.Popen(
            command,
            cwd=setup['tmp'],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def output(work_dir: Path) -> str:
    path = Path(f'{work_dir}.out')
    return path.read_text()[-4000:] if path.exists() else ''


@pytest.mark.slow
def test_sigkill_after_checkpoint_then_resume_matches_full_run(seg_setup):
    work_dir = seg_setup['tmp'] / 'killed'
    killed = train_cli(seg_setup, work_dir, config='small_kill.py')
    assert killed.wait(timeout=600) == -signal.SIGKILL, output(work_dir)
    assert pointer(work_dir) == work_dir / f'iter_{KILL_AT}.pth'
    first = read_losses(work_dir)
    assert sorted(first) == list(range(1, KILL_AT + 1))

    resumed = train_cli(seg_setup, work_dir, '--resume')
    assert resumed.wait(timeout=600) == 0, output(work_dir)
    assert f'resumed epoch: 0, iter: {KILL_AT}' in output(work_dir)
    losses = read_losses(work_dir)
    assert sorted(losses) == list(range(1, ITERS + 1))
    full = seg_setup['full']
    report = {i: (full[i], losses[i]) for i in range(KILL_AT + 1, ITERS + 1)}
    print('iter: (uninterrupted, resumed)', report)
    for i in range(1, ITERS + 1):
        assert losses[i] == pytest.approx(full[i], rel=1e-5, abs=1e-6), report


@pytest.mark.slow
def test_sigterm_saves_checkpoint_and_resume_continues(seg_setup):
    work_dir = seg_setup['tmp'] / 'preempted'
    proc = train_cli(seg_setup, work_dir)
    deadline = time.monotonic() + 600
    while 2 not in read_losses(work_dir):  # a couple of iterations done
        assert proc.poll() is None, output(work_dir)
        assert time.monotonic() < deadline, output(work_dir)
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=300) == 0, output(work_dir)
    log = output(work_dir)
    assert 'Received SIGTERM: saved checkpoint' in log, log
    stopped_at = max(read_losses(work_dir))
    assert 2 <= stopped_at < ITERS, log
    ckpt = work_dir / f'iter_{stopped_at}.pth'
    assert pointer(work_dir) == ckpt and problem(ckpt) is None
    assert torch.load(ckpt, map_location='cpu')['meta']['iter'] == stopped_at

    resumed = train_cli(seg_setup, work_dir, '--resume')
    assert resumed.wait(timeout=600) == 0, output(work_dir)
    assert f'resumed epoch: 0, iter: {stopped_at}' in output(work_dir)
    losses = read_losses(work_dir)
    assert sorted(losses) == list(range(1, ITERS + 1))
    full = seg_setup['full']
    report = {
        i: (full[i], losses[i]) for i in range(stopped_at + 1, ITERS + 1)
    }
    print(f'SIGTERM at iter {stopped_at}; (uninterrupted, resumed):', report)
    for i in range(stopped_at + 1, ITERS + 1):
        assert losses[i] == pytest.approx(full[i], rel=1e-5, abs=1e-6), report
