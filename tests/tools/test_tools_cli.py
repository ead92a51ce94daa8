"""Tests of the command-line tools in tools/ (no model is built).

The scripts are loaded as modules from their files; their ``parse_args``
and ``build_config`` are exercised on a tiny config, ``main`` with a fake
runner, and the dist_*.sh launchers with a fake ``python`` on PATH.
"""

import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')

TINY_CONFIG = """
model = dict(type='EncoderDecoder')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01))
default_hooks = dict(visualization=dict(type='SegVisualizationHook'))
test_evaluator = dict(type='IoUMetric')
test_dataloader = dict(dataset=dict(pipeline=[]))
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')])
"""

TTA_CONFIG = (
    TINY_CONFIG
    + """
tta_model = dict(type='SegTTAModel')
tta_pipeline = [dict(type='LoadImageFromFile'), dict(type='TestTimeAug')]
"""
)


def _load(name):
    """Import tools/<name>.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f'_tools_{name}', osp.join(TOOLS, f'{name}.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def train_tool():
    return _load('train')


@pytest.fixture(scope='module')
def test_tool():
    return _load('test')


@pytest.fixture(autouse=True)
def _restore_local_rank(monkeypatch):
    # parse_args sets LOCAL_RANK when absent; undo that after each test.
    monkeypatch.setenv('LOCAL_RANK', 'unset')
    monkeypatch.delenv('LOCAL_RANK')


def _write(tmp_path, text=TINY_CONFIG, name='tiny_cfg.py'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- train.py


def test_train_parse_args_all_flags(train_tool):
    args = train_tool.parse_args(
        [
            'cfg.py',
            '--work-dir',
            'wd',
            '--resume',
            '--amp',
            '--cfg-options',
            'a=1',
            'b.c=x',
            '--launcher',
            'pytorch',
            '--local-rank',
            '3',
        ]
    )
    assert args.config == 'cfg.py'
    assert args.work_dir == 'wd'
    assert args.resume and args.amp
    assert args.cfg_options == {'a': 1, 'b.c': 'x'}
    assert args.launcher == 'pytorch'
    assert args.local_rank == 3
    assert os.environ['LOCAL_RANK'] == '3'


def test_train_parse_args_defaults(train_tool):
    args = train_tool.parse_args(['cfg.py', '--local_rank', '1'])
    assert args.work_dir is None and args.cfg_options is None
    assert not args.resume and not args.amp
    assert args.launcher == 'none' and args.local_rank == 1
    with pytest.raises(SystemExit):
        train_tool.parse_args(['cfg.py', '--launcher', 'bogus'])


def test_train_local_rank_env_not_overridden(train_tool, monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '5')
    train_tool.parse_args(['cfg.py', '--local-rank', '0'])
    assert os.environ['LOCAL_RANK'] == '5'


def test_train_work_dir_priority(train_tool, tmp_path):
    config = _write(tmp_path)
    cfg = train_tool.build_config(train_tool.parse_args([config]))
    assert cfg.work_dir == osp.join('./work_dirs', 'tiny_cfg')

    config_wd = _write(
        tmp_path, TINY_CONFIG + "work_dir = 'from_cfg'\n", 'wd_cfg.py'
    )
    cfg = train_tool.build_config(train_tool.parse_args([config_wd]))
    assert cfg.work_dir == 'from_cfg'

    args = train_tool.parse_args([config_wd, '--work-dir', 'from_cli'])
    assert train_tool.build_config(args).work_dir == 'from_cli'


def test_train_cfg_options_merge(train_tool, tmp_path):
    args = train_tool.parse_args(
        [
            _write(tmp_path),
            '--cfg-options',
            'optim_wrapper.optimizer.lr=0.5',
            'train_cfg.max_iters=10',
            'model.pretrained=None',
        ]
    )
    cfg = train_tool.build_config(args)
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert cfg.optim_wrapper.optimizer.type == 'SGD'  # merged, not replaced
    assert cfg.train_cfg.max_iters == 10
    assert cfg.model.type == 'EncoderDecoder'
    assert cfg.model.pretrained is None


def test_train_launcher_and_resume(train_tool, tmp_path):
    config = _write(tmp_path)
    cfg = train_tool.build_config(train_tool.parse_args([config]))
    assert cfg.resume is False and cfg.launcher == 'none'
    args = train_tool.parse_args([config, '--resume', '--launcher', 'slurm'])
    cfg = train_tool.build_config(args)
    assert cfg.resume is True and cfg.launcher == 'slurm'


def test_train_amp(train_tool, tmp_path):
    config = _write(tmp_path)
    cfg = train_tool.build_config(train_tool.parse_args([config]))
    assert cfg.optim_wrapper.type == 'OptimWrapper'

    cfg = train_tool.build_config(train_tool.parse_args([config, '--amp']))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.optim_wrapper.optimizer.lr == 0.01


def test_train_amp_already_enabled(train_tool, tmp_path):
    config = _write(
        tmp_path,
        TINY_CONFIG + "optim_wrapper.update(type='AmpOptimWrapper', "
        'loss_scale=512.)\n',
        'amp_cfg.py',
    )
    cfg = train_tool.build_config(train_tool.parse_args([config, '--amp']))
    # Only a warning: the config's own AMP settings are kept.
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 512.0


def test_train_amp_rejects_other_wrappers(train_tool, tmp_path):
    args = train_tool.parse_args(
        [
            _write(tmp_path),
            '--amp',
            '--cfg-options',
            'optim_wrapper.type=MyWrapper',
        ]
    )
    with pytest.raises(AssertionError, match='OptimWrapper'):
        train_tool.build_config(args)


class _FakeRunner:
    """Records which of train/test ran and on which config."""

    calls = []

    def __init__(self, cfg):
        self.cfg = cfg

    @classmethod
    def from_cfg(cls, cfg):
        return cls(cfg)

    def train(self):
        self.calls.append(('train', self.cfg))

    def test(self):
        self.calls.append(('test', self.cfg))


def test_train_main_runs_runner(train_tool, tmp_path, monkeypatch):
    monkeypatch.setattr(train_tool, 'Runner', _FakeRunner)
    monkeypatch.setattr(_FakeRunner, 'calls', [])
    train_tool.main([_write(tmp_path), '--work-dir', str(tmp_path / 'w')])
    ((name, cfg),) = _FakeRunner.calls
    assert name == 'train' and cfg.work_dir == str(tmp_path / 'w')


# ----------------------------------------------------------------- test.py


def test_test_parse_args_all_flags(test_tool):
    args = test_tool.parse_args(
        [
            'cfg.py',
            'ckpt.pth',
            '--work-dir',
            'wd',
            '--out',
            'preds',
            '--show',
            '--show-dir',
            'vis',
            '--wait-time',
            '0.5',
            '--cfg-options',
            'a=1',
            '--launcher',
            'mpi',
            '--tta',
            '--local_rank',
            '2',
        ]
    )
    assert (args.config, args.checkpoint) == ('cfg.py', 'ckpt.pth')
    assert args.work_dir == 'wd' and args.out == 'preds'
    assert args.show and args.show_dir == 'vis'
    assert args.wait_time == 0.5
    assert args.cfg_options == {'a': 1}
    assert args.launcher == 'mpi' and args.tta
    assert args.local_rank == 2


def test_test_parse_args_defaults(test_tool):
    args = test_tool.parse_args(['cfg.py', 'ckpt.pth', '--local-rank', '1'])
    assert args.out is None and args.show_dir is None
    assert not args.show and not args.tta
    assert args.wait_time == 2 and args.launcher == 'none'
    assert args.local_rank == 1
    with pytest.raises(SystemExit):
        test_tool.parse_args(['cfg.py'])  # checkpoint is required


def test_test_build_config_basics(test_tool, tmp_path):
    args = test_tool.parse_args(
        [_write(tmp_path), 'ckpt.pth', '--cfg-options', 'test_cfg.x=1']
    )
    cfg = test_tool.build_config(args)
    # main() loads the checkpoint strictly; mmengine's Runner must not.
    assert cfg.get('load_from') is None and args.checkpoint == 'ckpt.pth'
    assert cfg.work_dir == osp.join('./work_dirs', 'tiny_cfg')
    assert cfg.test_cfg.x == 1
    # Visualization and output are left alone without the flags.
    assert 'draw' not in cfg.default_hooks.visualization
    assert 'output_dir' not in cfg.test_evaluator
    assert cfg.model.type == 'EncoderDecoder'


def test_test_out_sets_evaluator(test_tool, tmp_path):
    out = str(tmp_path / 'preds')
    args = test_tool.parse_args([_write(tmp_path), 'c.pth', '--out', out])
    cfg = test_tool.build_config(args)
    assert cfg.test_evaluator.output_dir == out
    assert cfg.test_evaluator.keep_results is True
    assert cfg.test_evaluator.type == 'IoUMetric'


def test_test_out_with_evaluator_list(test_tool, tmp_path):
    config = _write(
        tmp_path,
        TINY_CONFIG + "test_evaluator = [dict(type='IoUMetric')]\n",
        'list_cfg.py',
    )
    args = test_tool.parse_args([config, 'c.pth', '--out', 'o'])
    cfg = test_tool.build_config(args)
    assert cfg.test_evaluator[0].output_dir == 'o'


def test_test_show_dir(test_tool, tmp_path):
    show_dir = str(tmp_path / 'vis')
    args = test_tool.parse_args(
        [_write(tmp_path), 'c.pth', '--show-dir', show_dir]
    )
    cfg = test_tool.build_config(args)
    hook = cfg.default_hooks.visualization
    assert hook.draw is True and hook.interval == 1
    assert not hook.get('show', False)
    assert cfg.visualizer.save_dir == show_dir
    assert cfg.visualizer.type == 'SegLocalVisualizer'


def test_test_show(test_tool, tmp_path):
    args = test_tool.parse_args(
        [_write(tmp_path), 'c.pth', '--show', '--wait-time', '1']
    )
    cfg = test_tool.build_config(args)
    hook = cfg.default_hooks.visualization
    assert hook.draw is True and hook.show is True
    assert hook.wait_time == 1
    assert 'save_dir' not in cfg.visualizer


def test_test_show_dir_without_visualizer(test_tool, tmp_path):
    config = _write(
        tmp_path, TINY_CONFIG + 'visualizer = None\n', 'novis_cfg.py'
    )
    args = test_tool.parse_args([config, 'c.pth', '--show-dir', 'v'])
    cfg = test_tool.build_config(args)
    assert cfg.visualizer.type == 'SegLocalVisualizer'
    assert cfg.visualizer.save_dir == 'v'


def test_test_show_needs_hook(test_tool, tmp_path):
    config = _write(
        tmp_path, TINY_CONFIG + 'default_hooks = dict()\n', 'nohook_cfg.py'
    )
    args = test_tool.parse_args([config, 'c.pth', '--show'])
    with pytest.raises(RuntimeError, match='SegVisualizationHook'):
        test_tool.build_config(args)


def test_test_tta_missing_pipeline(test_tool, tmp_path):
    args = test_tool.parse_args([_write(tmp_path), 'c.pth', '--tta'])
    with pytest.raises(SystemExit) as excinfo:
        test_tool.build_config(args)
    assert 'tta_pipeline' in str(excinfo.value.code)


def test_test_tta(test_tool, tmp_path):
    config = _write(tmp_path, TTA_CONFIG, 'tta_cfg.py')
    cfg = test_tool.build_config(test_tool.parse_args([config, 'c.pth']))
    assert cfg.model.type == 'EncoderDecoder'  # no --tta: untouched

    cfg = test_tool.build_config(
        test_tool.parse_args([config, 'c.pth', '--tta'])
    )
    assert cfg.model.type == 'SegTTAModel'
    assert cfg.model.module.type == 'EncoderDecoder'
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert [t['type'] for t in pipeline] == [
        'LoadImageFromFile',
        'TestTimeAug',
    ]


def test_test_tta_default_model(test_tool, tmp_path):
    config = _write(
        tmp_path,
        TINY_CONFIG + "tta_pipeline = [dict(type='TestTimeAug')]\n",
        'tta_nomodel_cfg.py',
    )
    args = test_tool.parse_args([config, 'c.pth', '--tta'])
    cfg = test_tool.build_config(args)
    assert cfg.model.type == 'SegTTAModel'
    assert cfg.model.module.type == 'EncoderDecoder'


def test_test_main_runs_runner(test_tool, tmp_path, monkeypatch):
    """main() loads the checkpoint strictly into a checked model, then
    copies it into the runner's model and tests."""
    checked = torch.nn.Linear(2, 2)
    loads = []

    def fake_build_model(config, checkpoint, cfg_options=None):
        loads.append(checkpoint)
        return checked

    monkeypatch.setattr(test_tool, 'build_model', fake_build_model)
    monkeypatch.setattr(test_tool, 'Runner', _FakeRunner)
    monkeypatch.setattr(_FakeRunner, 'calls', [])
    monkeypatch.setattr(
        _FakeRunner, 'model', torch.nn.Linear(2, 2), raising=False
    )
    test_tool.main([_write(tmp_path), 'c.pth'])
    ((name, cfg),) = _FakeRunner.calls
    assert name == 'test' and cfg.get('load_from') is None
    assert loads == ['c.pth']
    assert torch.equal(_FakeRunner.model.weight, checked.weight)


@pytest.mark.slow
def test_scripts_help_run_as_programs():
    # As users run them: `python tools/x.py --help` from another cwd.
    for name in ('train', 'test'):
        result = subprocess.run(
            [sys.executable, osp.join(TOOLS, f'{name}.py'), '--help'],
            capture_output=True,
            text=True,
            cwd='/',
        )
        assert result.returncode == 0, result.stderr
        assert '--cfg-options' in result.stdout


# ------------------------------------------------------------- dist_*.sh


@pytest.mark.parametrize('name', ['dist_train.sh', 'dist_test.sh'])
def test_dist_scripts_syntax(name):
    path = osp.join(TOOLS, name)
    assert os.access(path, os.X_OK)
    subprocess.run(['bash', '-n', path], check=True)
    text = open(path).read()
    assert 'torch.distributed.run' in text
    assert 'torch.distributed.launch' not in text


def _fake_python(tmp_path):
    # A `python` that prints its arguments and PYTHONPATH, one per line.
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    fake = bin_dir / 'python'
    fake.write_text(
        '#!/usr/bin/env bash\n'
        'echo "PYTHONPATH=$PYTHONPATH"\n'
        'for a in "$@"; do echo "$a"; done\n'
    )
    fake.chmod(0o755)
    return str(bin_dir)


def _run_dist(tmp_path, script, args, **env):
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ('NNODES', 'NODE_RANK', 'PORT', 'MASTER_ADDR')
    }
    full_env['PATH'] = _fake_python(tmp_path) + os.pathsep + os.environ['PATH']
    full_env.update(env)
    result = subprocess.run(
        ['bash', osp.join(TOOLS, script), *args],
        capture_output=True,
        text=True,
        env=full_env,
        check=True,
    )
    return result.stdout.splitlines()


def test_dist_train_command(tmp_path):
    lines = _run_dist(
        tmp_path, 'dist_train.sh', ['cfg.py', '4', '--amp', '--resume']
    )
    assert lines[0].startswith('PYTHONPATH=')
    assert osp.realpath(lines[0][11:].split(':')[0]) == REPO
    assert lines[1:3] == ['-m', 'torch.distributed.run']
    assert lines[3:8] == [
        '--nnodes=1',
        '--node_rank=0',
        '--master_addr=127.0.0.1',
        '--nproc_per_node=4',
        '--master_port=29500',
    ]
    assert osp.realpath(lines[8]) == osp.join(TOOLS, 'train.py')
    assert lines[9:] == [
        'cfg.py',
        '--launcher',
        'pytorch',
        '--amp',
        '--resume',
    ]


def test_dist_test_command_env(tmp_path):
    lines = _run_dist(
        tmp_path,
        'dist_test.sh',
        ['cfg.py', 'ckpt.pth', '2', '--out', 'o'],
        NNODES='2',
        NODE_RANK='1',
        PORT='1234',
        MASTER_ADDR='10.0.0.1',
    )
    assert lines[3:8] == [
        '--nnodes=2',
        '--node_rank=1',
        '--master_addr=10.0.0.1',
        '--nproc_per_node=2',
        '--master_port=1234',
    ]
    assert osp.realpath(lines[8]) == osp.join(TOOLS, 'test.py')
    assert lines[9:] == [
        'cfg.py',
        'ckpt.pth',
        '--launcher',
        'pytorch',
        '--out',
        'o',
    ]
