"""Train a segmentor, with the flags and behaviour of mmseg 1.x train.py.

Usage::

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]
    bash tools/dist_train.sh CONFIG GPUS [--work-dir DIR] ...
"""

import argparse
import logging
import os
import os.path as osp
import sys

# Run from a checkout without installing: put the repo root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

# Imported before anything touches mmseg (mmengine does not): it registers
# our modules and installs the compat layer (mmcv-lite ops fallback) that
# must be active when mmseg is imported, even if the config has no
# ``custom_imports``.
import litehrnet_seg  # noqa: E402,F401
from litehrnet_seg.utils import prepare_cpu_distributed  # noqa: E402


def parse_args(argv=None):
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir automatically',
    )
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs; '
        'e.g. train_dataloader.batch_size=4 or key="[a,b]"',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    # torch.distributed.launch (torch >= 2.0) passes --local-rank, older
    # launchers --local_rank; accept both.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args):
    """Load the config and apply the command-line overrides to it."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # Multi-process on CPUs: gloo, and BN where SyncBN cannot run.
    prepare_cpu_distributed(cfg, args.launcher)

    # work_dir priority: CLI > config > ./work_dirs/<config stem>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        stem = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('./work_dirs', stem)

    if args.amp:
        wrapper_type = cfg.optim_wrapper.type
        if wrapper_type == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING,
            )
        else:
            assert wrapper_type == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper '
                f'type is `OptimWrapper` but got {wrapper_type}.'
            )
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    # Runner finds the latest checkpoint in work_dir when resume is True.
    cfg.resume = args.resume
    return cfg


def main(argv=None):
    """Build the runner from the config and train."""
    cfg = build_config(parse_args(argv))
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
