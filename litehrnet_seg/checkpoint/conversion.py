"""Move Lite-HRNet checkpoints between tasks and file layouts.

The segmentation model (``backbone.*``, ``decode_head.*``) and the pose
model (``backbone.*``, ``head.final_layer.*``) share the official Lite-HRNet
backbone layout, so checkpoints move between them by renaming keys
(:data:`~litehrnet_seg.checkpoint.key_map.KEY_RENAMES`).
"""

import datetime
import hashlib
import os
import os.path as osp
from collections import OrderedDict

import torch

from ..models.backbones.litehrnet import ARCH_SETTINGS
from .key_map import (
    BACKBONE,
    BACKBONE_ROOTS,
    CheckpointMismatchError,
    MatchReport,
    map_state_dict,
)
from .loading import build_model
from .reading import read_checkpoint, state_dict_of


def _sha256(filename: str) -> str | None:
    """sha256 of a local file (None for URLs and other backends)."""
    if not osp.isfile(filename):
        return None
    digest = hashlib.sha256()
    with open(filename, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds'
    )


def _save(checkpoint: dict, dst: str) -> None:
    """Write whole or not at all (temp file + rename)."""
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = f'{dst}.tmp{os.getpid()}'
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def convert_checkpoint(
    src: str,
    config: str,
    dst: str | None = None,
    *,
    allow_new_head: bool = False,
) -> MatchReport:
    """Convert a checkpoint to the layout of the model of ``config``.

    Reads official Lite-HRNet pose files (mmpose 0.x), mmpose 1.x files,
    bare backbone state dicts and this package's seg / pose checkpoints.
    Refuses (nothing written) when a tensor is missing, unexpected or of
    another shape. Moving to another task leaves the task heads out: allow
    that with ``allow_new_head`` (the backbone is still checked strictly).

    Args:
        src (str): Source checkpoint (path or any mmengine backend).
        config (str): Config file whose ``model`` is the target layout.
        dst (str, optional): Where to write ``{'state_dict', 'meta'}``.
            Defaults to None (only report).
        allow_new_head (bool): See
            :func:`~litehrnet_seg.checkpoint.load_checkpoint`.

    Returns:
        MatchReport: What was matched, renamed, skipped.

    Raises:
        CheckpointMismatchError: The checkpoint does not fit.
        CheckpointError: ``src`` cannot be read (names the file).
    """
    checkpoint = read_checkpoint(src)
    model = build_model(config)
    own = model.state_dict()
    mapped, report = map_state_dict(
        state_dict_of(checkpoint), own, src, str(config), allow_new_head
    )
    if not report.ok:
        raise CheckpointMismatchError(report)
    complete = OrderedDict(mapped)
    complete.update((k, own[k]) for k in report.new_head)
    model.load_state_dict(complete, strict=True)  # proves it loads
    if dst is not None:
        source_meta = dict(checkpoint.get('meta') or {})
        meta = dict(
            converted_from=src,
            sha256=_sha256(src),
            config=str(config),
            date=_now(),
            renamed=report.rename_rules(),
            skipped=list(report.skipped),
            new_head=list(report.new_head),
        )
        if 'dataset_meta' in source_meta:
            meta['dataset_meta'] = source_meta['dataset_meta']
        _save({'state_dict': mapped, 'meta': meta}, dst)
    return report


def infer_arch(state: dict) -> dict:
    """What Lite-HRNet variant a bare backbone state dict is.

    Counts the modules of each stage (``stage{i}.{j}.*``), reads the first
    branch's width from ``transition0.0.2.weight`` and the block type
    (``branch2`` keys: naive shuffle blocks), then names the variant of
    ``ARCH_SETTINGS`` with that structure.

    Args:
        state (dict): Backbone state dict, no ``backbone.`` prefix.

    Returns:
        dict: ``arch`` ('18', '30', 'naive_18', 'wider_naive_18' or None
        for an unknown variant), ``module_type``, ``num_modules``,
        ``channels`` (first branch) and ``with_head`` (IterativeHead).
    """
    modules: dict[int, set] = {}
    for key in state:
        parts = key.split('.')
        if parts[0].startswith('stage') and parts[0][5:].isdigit():
            modules.setdefault(int(parts[0][5:]), set()).add(parts[1])
    num_modules = [len(modules[i]) for i in sorted(modules)]
    weight = state.get('transition0.0.2.weight')
    channels = int(weight.shape[0]) if weight is not None else None
    module_type = 'NAIVE' if any('.branch2.' in k for k in state) else 'LITE'
    arch = None
    for name, extra in ARCH_SETTINGS.items():
        spec = extra['stages_spec']
        if (
            tuple(num_modules) == tuple(spec['num_modules'])
            and module_type == spec['module_type'][0]
            and channels == spec['num_channels'][0][0]
        ):
            arch = name
            break
    return dict(
        arch=arch,
        module_type=module_type,
        num_modules=num_modules,
        channels=channels,
        with_head=any(k.startswith('head_layer.') for k in state),
    )


def infer_task(state: dict) -> str | None:
    """'seg', 'pose', 'multi-task' or None from a checkpoint's head keys.

    Args:
        state (dict): Full checkpoint state dict.

    Returns:
        str | None: The task(s) the checkpoint was trained on.
    """
    seg = any(k.startswith('decode_head.') for k in state)
    pose = any(
        k.startswith(('head.final_layer.', 'keypoint_head.')) for k in state
    )
    if seg and pose:
        return 'multi-task'
    return 'seg' if seg else 'pose' if pose else None


def extract_backbone(src: str, dst: str, keep_prefix: bool = False) -> dict:
    """Write only the backbone tensors of a checkpoint, with metadata.

    The output loads through ``init_cfg=dict(type='Pretrained',
    checkpoint=dst)`` (add ``prefix='backbone.'`` with ``keep_prefix``).

    Args:
        src (str): A seg, pose or multi-task checkpoint (or a bare
            backbone file).
        dst (str): Output file: ``{'state_dict': ..., 'meta': meta}``.
        keep_prefix (bool): Keep the ``backbone.`` prefix on the keys.
            Defaults to False (bare backbone keys).

    Returns:
        dict: The metadata written: ``arch``, ``module_type``,
        ``num_modules``, ``channels``, ``with_head``, ``task``, ``source``,
        ``sha256`` (of ``src``), ``date`` (ISO 8601, UTC), ``prefix``,
        ``num_tensors``.

    Raises:
        ValueError: If ``src`` holds no Lite-HRNet backbone tensors.
        CheckpointError: If ``src`` cannot be read (names the file).
    """
    checkpoint = read_checkpoint(src)
    state = state_dict_of(checkpoint)
    backbone = state_dict_of(checkpoint, BACKBONE)
    if not backbone:  # already a bare backbone file?
        backbone = OrderedDict(
            (k, v) for k, v in state.items() if k.startswith(BACKBONE_ROOTS)
        )
    if not backbone:
        raise ValueError(
            f'checkpoint {src!r} has no backbone tensors (no "backbone.*" '
            'keys and no bare Lite-HRNet keys)'
        )
    source_meta = dict(checkpoint.get('meta') or {})
    meta = infer_arch(backbone)
    meta.update(
        task=infer_task(state) or source_meta.get('task'),
        source=src,
        sha256=_sha256(src),
        date=_now(),
        prefix=BACKBONE if keep_prefix else '',
        num_tensors=len(backbone),
    )
    if keep_prefix:
        backbone = OrderedDict((BACKBONE + k, v) for k, v in backbone.items())
    _save({'state_dict': backbone, 'meta': meta}, dst)
    return meta
