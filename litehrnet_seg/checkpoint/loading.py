"""The project's one strict checkpoint loader and one model builder.

mmengine loads with ``strict=False`` by default and only logs what did not
fit, so a checkpoint of another architecture or task half loads and the
model predicts from random weights with exit status 0. Everything in this
package (inference, ``tools/test.py``, ``load_from``, export, convert,
``Pretrained``) loads through :func:`load_checkpoint` instead: every key
must fit, and deliberate partial loads are explicit opt-ins that say what
they skipped.
"""

import copy
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from .key_map import CheckpointMismatchError, map_state_dict
from .reading import CheckpointError, read_checkpoint, state_dict_of


def resolve_config_path(config: str | Path) -> str:
    """Path of a config file; ``mmseg::x.py`` names mmseg's bundled config
    ``x.py`` (e.g. ``mmseg::hrnet/fcn_hr18s_4xb2-40k_cityscapes-512x1024.py``).

    Args:
        config (str | Path): File path or ``mmseg::`` name.

    Returns:
        str: An existing file path.

    Raises:
        FileNotFoundError: Naming the config when it does not exist.
    """
    config = str(config)
    if config.startswith('mmseg::'):
        import mmseg

        root = Path(mmseg.__file__).parent / '.mim' / 'configs'
        path = root / config[len('mmseg::') :]
    else:
        path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f'config {config!r} not found ({path})')
    return str(path)


def load_config(config: str | Path | Config) -> Config:
    """A config object from a path, an ``mmseg::`` name or a Config (a
    copy, so callers may change it)."""
    if isinstance(config, Config):
        return copy.deepcopy(config)
    return Config.fromfile(resolve_config_path(config))


def load_checkpoint(
    model: torch.nn.Module,
    filename: str,
    *,
    config: str | None = None,
    prefix: str | None = None,
    allow_new_head: bool = False,
    map_location: str = 'cpu',
) -> dict:
    """Load a checkpoint into ``model`` strictly, renaming known layouts.

    Missing, unexpected and shape-mismatched keys are all errors, listed
    grouped by module with counts. Known layouts (official / mmpose 0.x /
    mmpose 1.x pose, bare backbone, DDP ``module.``) are renamed first.

    Args:
        model (nn.Module): The model (or bare backbone) to load into.
        filename (str): Checkpoint file (or any mmengine backend).
        config (str, optional): The config the model came from, named in
            messages. Defaults to the model's class name.
        prefix (str, optional): Load only the checkpoint keys under this
            prefix, stripped (e.g. ``'backbone.'`` into a bare backbone).
        allow_new_head (bool): Opt-in for a checkpoint of another task:
            the backbone must fit exactly; the model's task head keeps its
            initialisation and the checkpoint's other head is skipped, and
            both are logged. Defaults to False.
        map_location (str): Where to map tensors. Defaults to 'cpu'.

    Returns:
        dict: The checkpoint read (``meta`` and all).

    Raises:
        CheckpointError: The file cannot be read (names it and why).
        CheckpointMismatchError: The checkpoint does not fit; nothing is
            loaded.
    """
    checkpoint = read_checkpoint(filename, map_location)
    state = state_dict_of(checkpoint, prefix)
    if prefix and not state:
        raise CheckpointError(
            f'checkpoint {filename!r} has no keys under prefix {prefix!r}'
        )
    own = model.state_dict()
    target = config or type(model).__name__
    mapped, report = map_state_dict(
        state, own, str(filename), str(target), allow_new_head
    )
    if not report.ok:
        raise CheckpointMismatchError(report)
    if report.new_head or report.skipped:
        print_log(
            f'checkpoint {filename!r} loaded with allow_new_head:\n'
            + report.skipped_text(),
            logger='current',
        )
        mapped.update((k, own[k]) for k in report.new_head)
    model.load_state_dict(mapped, strict=True)
    return checkpoint


def dataset_meta_from_config(cfg: Config) -> dict:
    """The metainfo of the config's test (else val, train) dataset, as its
    dataset class would set it: ``classes`` and ``palette`` for Cityscapes,
    ``flip_indices``, ``skeleton_links``... for pose datasets.

    Args:
        cfg (Config): A config with ``*_dataloader.dataset``.

    Returns:
        dict: The metainfo, or {} when no known dataset class is named.
    """
    from mmseg.registry import DATASETS

    from ..datasets.base_pose_dataset import (
        BaseTopdownPoseDataset,
        parse_pose_metainfo,
    )

    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset') or {}
        cls = DATASETS.get(dataset.get('type', ''))
        if cls is None:
            continue
        user = dict(dataset.get('metainfo') or {})
        meta = copy.deepcopy(dict(getattr(cls, 'METAINFO', {})))
        if issubclass(cls, BaseTopdownPoseDataset):
            full = 'from_file' in user or 'keypoint_info' in user
            meta = user if full else {**meta, **user}
            return parse_pose_metainfo(meta, cls.__name__)
        return {**meta, **user}
    return {}


def build_model(
    config: str | Path | Config,
    checkpoint: str | None = None,
    *,
    device: str = 'cpu',
    allow_new_head: bool = False,
    cfg_options: dict | None = None,
) -> torch.nn.Module:
    """Build the model of a config (seg or pose) and load a checkpoint.

    Args:
        config (str | Path | Config): Config file, ``mmseg::`` name or
            object.
        checkpoint (str, optional): Checkpoint, loaded strictly with
            :func:`load_checkpoint`. Defaults to None (initial weights).
        device (str): Torch device. Defaults to 'cpu'.
        allow_new_head (bool): See :func:`load_checkpoint`.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The model in eval mode with ``cfg`` and
        ``dataset_meta`` (the checkpoint's ``meta['dataset_meta']``, else
        the config's dataset metainfo).
    """
    from mmseg.registry import MODELS

    import litehrnet_seg  # noqa: F401  (registers the modules)

    cfg = load_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    meta = {}
    if checkpoint is not None:
        name = config if isinstance(config, (str, Path)) else 'config'
        loaded = load_checkpoint(
            model, checkpoint, config=str(name), allow_new_head=allow_new_head
        )
        meta = dict((loaded.get('meta') or {}).get('dataset_meta') or {})
    model.cfg = cfg
    model.dataset_meta = meta or dataset_meta_from_config(cfg)
    return model.to(device).eval()
