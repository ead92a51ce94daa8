"""The config of a ``tools/train.py`` / ``tools/test.py`` command line."""

import os.path as osp

from mmengine.config import Config

from .compile_config import resolve_compile_config
from .distributed_cpu import prepare_cpu_distributed

__all__ = ['WorkDirError', 'load_cli_config']


class WorkDirError(ValueError):
    """The work_dir cannot be used (e.g. it is an existing file)."""


def load_cli_config(
    config: str,
    *,
    launcher: str = 'none',
    cfg_options: dict | None = None,
    work_dir: str | None = None,
) -> Config:
    """Load ``config`` and apply what every tool's flags change.

    Sets ``launcher``, merges ``--cfg-options``, prepares multi-process
    runs on CPUs (gloo, BN where SyncBN cannot run), turns the
    ``cuda_graphs`` key into mmengine's ``compile`` options and sets
    ``work_dir`` (priority: ``work_dir`` argument > config >
    ``./work_dirs/<config stem>``).

    Args:
        config (str): Config file path.
        launcher (str): Job launcher ('none', 'pytorch', 'slurm', 'mpi').
            Defaults to 'none'.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        work_dir (str, optional): ``--work-dir``.

    Returns:
        Config: The config.

    Raises:
        WorkDirError: The resulting work_dir is an existing file.
    """
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    prepare_cpu_distributed(cfg, launcher)
    resolve_compile_config(cfg)  # cuda_graphs=True -> compile mode
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        stem = osp.splitext(osp.basename(config))[0]
        cfg.work_dir = osp.join('./work_dirs', stem)
    if osp.isfile(cfg.work_dir):
        raise WorkDirError(
            f'work_dir {cfg.work_dir!r} is an existing file; expected a '
            'directory (set by --work-dir or work_dir in the config '
            f'{config})'
        )
    return cfg
