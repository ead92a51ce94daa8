"""Test (and evaluate) a segmentor, with the flags of mmseg 1.x test.py.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
        [--show] [--show-dir DIR] [--wait-time S] [--tta] [--optimize]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [--out DIR] ...

``--out`` writes the predicted masks as PNG files (via the test
evaluator's ``output_dir``); ``--show-dir`` saves painted predictions.
"""

import argparse
import os
import os.path as osp
import sys

# Run from a checkout without installing: put the repo root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.model import BaseTTAModel, is_model_wrapper  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

# Imported before anything touches mmseg (mmengine does not): it registers
# our modules and installs the compat layer (mmcv-lite ops fallback) that
# must be active when mmseg is imported, even if the config has no
# ``custom_imports``.
import litehrnet_seg  # noqa: E402,F401
from litehrnet_seg.apis import optimize_for_inference  # noqa: E402
from litehrnet_seg.checkpoint import (  # noqa: E402
    CheckpointError,
    CheckpointMismatchError,
    build_model,
)
from litehrnet_seg.utils.cli_config import (  # noqa: E402
    WorkDirError,
    load_cli_config,
)


def parse_args(argv=None):
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='MMSeg test (and eval) a model'
    )
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='if specified, the evaluation metric results will be dumped '
        'into the directory as json',
    )
    parser.add_argument(
        '--out',
        type=str,
        help='the directory to save the predicted masks (PNG) for offline '
        'evaluation or submission',
    )
    parser.add_argument(
        '--show', action='store_true', help='show prediction results'
    )
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved; if set, they '
        'are saved under this directory',
    )
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)'
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs; '
        'e.g. test_dataloader.batch_size=1 or key="[a,b]"',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument(
        '--tta', action='store_true', help='test time augmentation'
    )
    parser.add_argument(
        '--optimize',
        action='store_true',
        help='score the optimised inference path (coarse-first fuse sums, '
        'BN folded into convs, channels_last; outputs equal eager within '
        '1e-4) instead of the plain model',
    )
    # torch.distributed.launch (torch >= 2.0) passes --local-rank, older
    # launchers --local_rank; accept both.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    """Turn on SegVisualizationHook for ``--show`` / ``--show-dir``."""
    hooks = cfg.get('default_hooks') or {}
    if 'visualization' not in hooks:
        raise RuntimeError(
            '--show/--show-dir need a SegVisualizationHook in '
            'default_hooks, e.g. default_hooks = dict(visualization='
            "dict(type='SegVisualizationHook'))"
        )
    hook = hooks['visualization']
    hook['draw'] = True
    # Visualize every test sample, not every 50th (the hook's default).
    hook['interval'] = 1
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        # The hook has no directory argument: the images go to the
        # visualizer's backends, which save under visualizer.save_dir.
        if cfg.get('visualizer', None) is None:
            # Without one the runner builds a plain Visualizer, which
            # cannot draw segmentation samples.
            cfg.visualizer = dict(
                type='SegLocalVisualizer',
                vis_backends=[dict(type='LocalVisBackend')],
                name='visualizer',
            )
        cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def build_config(args):
    """Load the config and apply the command-line overrides to it."""
    cfg = load_cli_config(
        args.config,
        launcher=args.launcher,
        cfg_options=args.cfg_options,
        work_dir=args.work_dir,
    )

    # The checkpoint is loaded strictly by main(), not by the Runner
    # (mmengine's Runner loads with strict=False).
    cfg.load_from = None

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    if args.tta:
        if cfg.get('tta_pipeline', None) is None:
            sys.exit(
                f'--tta needs a `tta_pipeline` in the config {args.config}'
            )
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        # mmseg configs give tta_model = dict(type='SegTTAModel').
        tta_model = cfg.get('tta_model', None) or dict(type='SegTTAModel')
        tta_model['module'] = cfg.model
        cfg.model = tta_model

    if args.out is not None:
        # IoUMetric writes each predicted mask to output_dir as a PNG.
        evaluators = cfg.test_evaluator
        if not isinstance(evaluators, (list, tuple)):
            evaluators = [evaluators]
        outputs = []
        for evaluator in evaluators:
            if evaluator.get('type') == 'CocoMetric':
                # Pose on COCO: the results JSON (COCO results format).
                evaluator['outfile_prefix'] = osp.join(args.out, 'results')
            elif evaluator.get('type') == 'MpiiPCKAccuracy':
                # Pose on MPII: every prediction, with mmengine's dumper.
                outputs.append(
                    dict(
                        type='DumpResults',
                        out_file_path=osp.join(args.out, 'results.pkl'),
                    )
                )
            else:
                evaluator['output_dir'] = args.out
                evaluator['keep_results'] = True
        if outputs:
            cfg.test_evaluator = list(evaluators) + outputs
    return cfg


def segmentor_of(model: torch.nn.Module) -> torch.nn.Module:
    """The model that checkpoints describe, inside DDP / TTA wrappers."""
    if is_model_wrapper(model):
        model = model.module
    if isinstance(model, BaseTTAModel):
        model = model.module
    return model


def main(argv=None):
    """Check the checkpoint, build the runner and test the checkpoint."""
    args = parse_args(argv)
    try:
        cfg = build_config(args)
    except WorkDirError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
    # Strict load before the Runner exists: a checkpoint of another
    # architecture or task stops here, before any work_dir is written.
    try:
        checked = build_model(
            args.config, args.checkpoint, cfg_options=args.cfg_options
        )
    except (CheckpointError, CheckpointMismatchError) as e:
        sys.exit(f'error: {e}')
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    model = segmentor_of(runner.model)
    model.load_state_dict(checked.state_dict())
    del checked
    if args.optimize:
        fast = optimize_for_inference(model)
        if model is runner.model:
            runner.model = fast
        elif isinstance(runner.model, BaseTTAModel):
            runner.model.module = fast
        else:  # DDP: the forward is all a test needs
            runner.model = fast
    runner.test()


if __name__ == '__main__':
    main()
