"""Train a segmentor, with the flags and behaviour of mmseg 1.x train.py.

Usage::

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
        [--allow-new-head] [--cfg-options KEY=VALUE ...]
        [--launcher {none,pytorch,slurm,mpi}]
    bash tools/dist_train.sh CONFIG GPUS [--work-dir DIR] ...

Checkpoints load strictly (``load_from`` and ``--resume``): one of another
architecture or task is refused before training, naming the file, the
config and the mismatch. ``--resume`` continues from the newest intact
checkpoint of the work_dir.
"""

import argparse
import logging
import os
import os.path as osp
import sys

# Run from a checkout without installing: put the repo root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402

# Imported before anything touches mmseg (mmengine does not): it registers
# our modules and installs the compat layer (mmcv-lite ops fallback) that
# must be active when mmseg is imported, even if the config has no
# ``custom_imports``.
import litehrnet_seg  # noqa: E402,F401
from litehrnet_seg.checkpoint import (  # noqa: E402
    CheckpointError,
    CheckpointMismatchError,
)
from litehrnet_seg.engine import (  # noqa: E402
    CheckpointWriteError,
    ResumeError,
    StrictLoadRunner,
    find_resume_checkpoint,
    remove_stale_temp_files,
)
from litehrnet_seg.utils.cli_config import (  # noqa: E402
    WorkDirError,
    load_cli_config,
)

# The runner main() builds unless the config names a ``runner_type``.
Runner = StrictLoadRunner


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
        '--allow-new-head',
        action='store_true',
        default=False,
        help='load_from may be a checkpoint of the other task (seg <-> '
        'pose): its backbone must fit exactly, the head keeps its '
        'initialisation; the log lists what was skipped',
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
    if args.allow_new_head and args.resume:
        parser.error(
            '--allow-new-head is for load_from only; --resume continues a '
            "run of this config's own model"
        )
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args):
    """Load the config and apply the command-line overrides to it.

    Raises:
        WorkDirError: The work_dir is an existing file.
    """
    cfg = load_cli_config(
        args.config,
        launcher=args.launcher,
        cfg_options=args.cfg_options,
        work_dir=args.work_dir,
    )
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

    # Runner resumes from load_from when resume is True (set by main()).
    cfg.resume = args.resume
    cfg.allow_new_head = getattr(args, 'allow_new_head', False)
    return cfg


def checkpoint_dirs(cfg) -> list[str]:
    """Folders the checkpoint hook writes to besides the work_dir."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    out_dir = hook.get('out_dir')
    if not out_dir or '://' in str(out_dir):
        return []
    return [osp.join(out_dir, osp.basename(osp.abspath(cfg.work_dir)))]


def fail(message: str, status: int = 1) -> None:
    """Print ``message`` as the tool's error and exit with ``status``."""
    print(f'{osp.basename(sys.argv[0])}: error: {message}', file=sys.stderr)
    raise SystemExit(status)


def main(argv=None):
    """Build the runner from the config and train."""
    args = parse_args(argv)
    try:
        cfg = build_config(args)
    except WorkDirError as e:
        fail(str(e), status=2)  # a usage error, like argparse's
    dirs = checkpoint_dirs(cfg)
    for directory in [cfg.work_dir, *dirs]:
        for path in remove_stale_temp_files(directory):
            print_log(f'Removed {path}, left by an interrupted save.')
    if cfg.resume and cfg.get('load_from') is None:
        try:
            cfg.load_from = find_resume_checkpoint(cfg.work_dir, dirs)
        except ResumeError as e:
            fail(str(e))
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    except CheckpointMismatchError as e:
        if cfg.resume:
            fail(
                f'--resume: the model saved in {cfg.load_from} differs from '
                f'the model of the config {args.config} (was the '
                f'architecture changed?):\n{e}'
            )
        fail(f'load_from: {e}')
    except (CheckpointError, CheckpointWriteError) as e:
        fail(str(e))


if __name__ == '__main__':
    main()
