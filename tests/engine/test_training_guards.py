"""Divergence guards: NonFiniteLossHook and NonFiniteGuardOptimWrapper;
the configs enable them with the atomic saves and the safe train loop.

A toy regression model injects a NaN loss (or NaN gradients) at chosen
iterations; training runs in process in well under a second.
"""

import math
import uuid
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

import litehrnet_seg  # noqa: F401  (hooks, optimizer wrapper)
from litehrnet_seg.checkpoint import read_checkpoint
from litehrnet_seg.engine import (
    NonFiniteGuardOptimWrapper,
    NonFiniteLossError,
    NonFiniteLossHook,
)

ROOT = Path(__file__).resolve().parents[2]


class ToyDataset(torch.utils.data.Dataset):
    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(1)
        self.x = torch.randn(16, 4, generator=generator)
        self.y = self.x.sum(1, keepdim=True)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=self.x[i], data_samples=self.y[i])


class ToyModel(BaseModel):
    """Linear regression; the loss of the ``nan_loss_at``-th training
    forward is NaN, and the gradients of the ``nan_grad_at``-th are NaN
    while its loss stays finite."""

    def __init__(self, nan_loss_at=(), nan_grad_at=()) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.linear = nn.Linear(4, 1)
        self.nan_loss_at = set(nan_loss_at)
        self.nan_grad_at = set(nan_grad_at)
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode != 'loss':
            return out
        self.calls += 1
        if self.calls in self.nan_grad_at:
            out.register_hook(lambda grad: torch.full_like(grad, math.nan))
        loss = ((out - torch.stack(data_samples)) ** 2).mean()
        if self.calls in self.nan_loss_at:
            loss = loss * math.nan
        return dict(loss_mse=loss)


class Snapshot(Hook):
    """Weights after each iteration."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.weights: dict[int, torch.Tensor] = {}

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        weight = runner.model.linear.weight.detach().clone()
        self.weights[runner.iter + 1] = weight


def toy_runner(
    work_dir: Path,
    model: ToyModel,
    *,
    policy: str = 'raise',
    guard: bool = False,
    max_iters: int = 6,
    hooks: tuple = (),
) -> Runner:
    return Runner(
        model=model,
        work_dir=str(work_dir),
        experiment_name=f'toy_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='InfiniteSampler', shuffle=True),
            batch_size=4,
            num_workers=0,
            collate_fn=pseudo_collate,
        ),
        train_cfg=dict(type='SafeIterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(
            type='NonFiniteGuardOptimWrapper' if guard else 'OptimWrapper',
            optimizer=dict(type='SGD', lr=0.05, momentum=0.9),
        ),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                backend_args=dict(backend='local_atomic'),
                interval=2,
                by_epoch=False,
            ),
            logger=dict(type='LoggerHook', interval=1),
            non_finite=dict(type='NonFiniteLossHook', policy=policy),
        ),
        custom_hooks=list(hooks),
        randomness=dict(seed=0),
        default_scope='mmseg',
    )


def log_text(work_dir: Path) -> str:
    return '\n'.join(p.read_text() for p in work_dir.glob('*/*.log'))


@pytest.mark.parametrize('guard', [False, True], ids=['plain', 'guard'])
def test_raise_stops_at_the_nan_iteration_keeping_last_checkpoint(
    tmp_path, guard
):
    snapshot = Snapshot()
    runner = toy_runner(
        tmp_path, ToyModel(nan_loss_at={3}), guard=guard, hooks=[snapshot]
    )
    with pytest.raises(NonFiniteLossError) as error:
        runner.train()
    message = str(error.value)
    assert 'iteration 3' in message and 'loss_mse=nan' in message
    assert str(tmp_path / 'iter_2.pth') in message  # last good checkpoint
    assert 'iteration 3' in log_text(tmp_path)  # also in the log file

    # Nothing of the diverged state was written; the pointer is intact.
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_2.pth']
    last = Path((tmp_path / 'last_checkpoint').read_text())
    assert last == tmp_path / 'iter_2.pth'
    ckpt = read_checkpoint(str(last))  # complete and readable
    assert ckpt['meta']['iter'] == 2
    assert all(t.isfinite().all() for t in ckpt['state_dict'].values())
    assert 3 not in snapshot.weights  # the hook raised before the rest
    if guard:  # the bad step was not even applied in memory
        assert runner.model.linear.weight.isfinite().all()


def test_skip_continues_without_applying_nan_steps(tmp_path):
    snapshot = Snapshot()
    model = ToyModel(nan_loss_at={3}, nan_grad_at={5})
    runner = toy_runner(
        tmp_path, model, policy='skip', guard=True, hooks=[snapshot]
    )
    runner.train()

    wrapper = runner.optim_wrapper
    assert isinstance(wrapper, NonFiniteGuardOptimWrapper)
    assert wrapper.skipped_steps == 2
    hook = next(h for h in runner.hooks if isinstance(h, NonFiniteLossHook))
    assert hook.skipped == 2
    # Iterations 3 (NaN loss) and 5 (NaN gradients) left the weights as
    # they were; the others moved them; all stay finite.
    weights = snapshot.weights
    assert torch.equal(weights[3], weights[2])
    assert torch.equal(weights[5], weights[4])
    assert not torch.equal(weights[4], weights[3])
    assert not torch.equal(weights[6], weights[5])
    assert all(w.isfinite().all() for w in weights.values())
    log = log_text(tmp_path)
    assert 'Iteration 3: non-finite loss terms loss=nan, loss_mse=nan' in log
    assert 'Iteration 5: non-finite gradients' in log
    assert '2 skipped so far' in log
    ckpt = torch.load(tmp_path / 'iter_6.pth', map_location='cpu')
    assert all(t.isfinite().all() for t in ckpt['state_dict'].values())
    # Adam/SGD state is untouched by skipped steps: momentum stays finite.
    for state in ckpt['optimizer']['state'].values():
        assert state['momentum_buffer'].isfinite().all()


def test_raise_on_nan_gradients_with_finite_loss(tmp_path):
    runner = toy_runner(tmp_path, ToyModel(nan_grad_at={3}), guard=True)
    with pytest.raises(NonFiniteLossError, match='iteration 3.*gradients'):
        runner.train()
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_2.pth']


def test_skip_gives_up_after_too_many_consecutive_skips(tmp_path):
    runner = toy_runner(
        tmp_path, ToyModel(nan_loss_at={3, 4, 5}), policy='skip', guard=True
    )
    hook = next(h for h in runner.hooks if isinstance(h, NonFiniteLossHook))
    hook.max_consecutive_skips = 2
    with pytest.raises(NonFiniteLossError, match='2 consecutive iterations'):
        runner.train()


def test_skip_needs_the_guard_optim_wrapper(tmp_path):
    runner = toy_runner(tmp_path, ToyModel(), policy='skip', guard=False)
    with pytest.raises(TypeError, match='NonFiniteGuardOptimWrapper'):
        runner.train()


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    class PoisonWeights(Hook):  # e.g. an inf gradient with plain SGD
        priority = 'HIGH'  # before the checkpoint hook

        def after_train_iter(self, runner, batch_idx, data_batch=None, **kw):
            if runner.iter + 1 == 2:
                with torch.no_grad():
                    runner.model.linear.weight.fill_(math.inf)

    runner = toy_runner(tmp_path, ToyModel(), hooks=[PoisonWeights()])
    with pytest.raises(NonFiniteLossError, match='linear.weight'):
        runner.train()
    assert not list(tmp_path.glob('*.pth'))
    assert not (tmp_path / 'last_checkpoint').exists()


def test_guard_steps_normally_and_clips_like_optim_wrapper():
    torch.manual_seed(0)
    models = [nn.Linear(4, 1) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    clip = dict(max_norm=0.1, norm_type=2)
    wrappers = [
        OptimWrapper(
            torch.optim.SGD(models[0].parameters(), lr=0.1), clip_grad=clip
        ),
        NonFiniteGuardOptimWrapper(
            torch.optim.SGD(models[1].parameters(), lr=0.1), clip_grad=clip
        ),
    ]
    x = torch.randn(8, 4)
    for model, wrapper in zip(models, wrappers, strict=True):
        for _ in range(3):
            wrapper.update_params((model(x) ** 2).mean())
    assert torch.equal(models[0].weight, models[1].weight)
    assert wrappers[1].skipped_steps == 0


@pytest.mark.parametrize(
    'name',
    [
        'litehrnet/fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py',
        'litehrnet/fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-128x256'
        '.py',
        'pose/topdown-heatmap_litehrnet18_8xb64-210e_coco-256x192.py',
        'pose/topdown-heatmap_litehrnet18_1xb12-120i_coco-sample-256x192.py',
    ],
)
def test_configs_enable_the_guards(name):
    cfg = Config.fromfile(ROOT / 'configs' / name)
    hooks = cfg.default_hooks
    assert hooks.checkpoint.backend_args == dict(backend='local_atomic')
    assert cfg.train_cfg.type in (
        'SafeIterBasedTrainLoop',
        'SafeEpochBasedTrainLoop',
    )
    assert cfg.train_cfg.get('stop_signals', ('SIGTERM',))
    assert hooks.non_finite == dict(type='NonFiniteLossHook', policy='raise')
    assert cfg.optim_wrapper.get('clip_grad') is None  # numerics unchanged
