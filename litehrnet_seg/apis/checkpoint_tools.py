"""Move Lite-HRNet checkpoints between tasks and file layouts.

The segmentation model (``EncoderDecoder``: ``backbone.*``,
``decode_head.*``) and the pose model (``TopdownPoseEstimator``:
``backbone.*``, ``head.final_layer.*``) share the official Lite-HRNet
backbone layout, so checkpoints move between them by renaming keys:

* :func:`convert_checkpoint` maps any supported file (official mmpose 0.x
  ``keypoint_head.*``, mmpose 1.x ``head.*``, a plain backbone state dict,
  our own seg / pose checkpoints) onto the layout of a config's model and
  refuses, listing the offending tensors, when the architectures differ.
* :func:`extract_backbone` writes only the backbone tensors of a checkpoint
  together with what they are (arch, task, source and its sha256), ready
  for ``init_cfg=dict(type='Pretrained', ...)``.
"""

import datetime
import hashlib
import os
import os.path as osp
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import CheckpointLoader

from ..models.backbones.litehrnet import ARCH_SETTINGS
from ..models.utils import load_state_dict_checked, read_state_dict

_MAX_LISTED = 20  # tensors listed per category in messages and tables
_BACKBONE = 'backbone.'
# Top-level names of a bare LiteHRNet state dict (no ``backbone.`` prefix).
_BACKBONE_ROOTS = ('stem', 'transition', 'stage', 'head_layer')
# Source prefix -> target prefix, tried in order for keys with no exact
# match in the target model.
_PREFIX_RULES = (
    ('keypoint_head.', 'head.'),  # official Lite-HRNet / mmpose 0.x
    ('', _BACKBONE),  # plain backbone state dict
    (_BACKBONE, ''),  # into a bare backbone model
)


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit a model; ``report`` says what differs.

    Args:
        message (str): The error message.
        report (ConversionReport): The full comparison.
    """

    def __init__(self, message: str, report: 'ConversionReport') -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ConversionReport:
    """How the tensors of a checkpoint map onto a model.

    Args:
        source (str): The checkpoint file.
        config (str): The config whose model is the target layout.
        dst (str, optional): Where the converted checkpoint was written.
        matched (list[str]): Keys found unchanged in the model.
        renamed (dict[str, str]): Checkpoint key -> model key.
        missing (list[str]): Model keys the checkpoint does not provide.
        unexpected (list[str]): Checkpoint keys the model has no place for
            (dropped from the output).
        mismatched (list[tuple]): ``(model key, checkpoint shape, model
            shape)`` for tensors present on both sides with other shapes.
        filled (list[str]): BatchNorm ``num_batches_tracked`` counters
            absent from the checkpoint (old files), taken from the model.
        new_head (list[str]): Model keys outside the backbone absent from
            the checkpoint and allowed to be (``allow_new_head``): not
            written, the task head keeps its initialisation.
    """

    source: str
    config: str
    dst: str | None = None
    matched: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    new_head: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every model tensor comes from the checkpoint with the
        right shape."""
        return not (self.missing or self.mismatched)

    def rename_rules(self) -> dict[str, int]:
        """Renames grouped by prefix rule, e.g. ``'keypoint_head.* ->
        head.*'``, with the number of keys each one moved."""
        rules: dict[str, int] = {}
        for old, new in self.renamed.items():
            rule = _rule_of(old, new)
            rules[rule] = rules.get(rule, 0) + 1
        return rules

    def problems(self) -> str:
        """The missing keys and shape mismatches as text ('' if none)."""
        lines = []
        if self.mismatched:
            lines.append(f'{len(self.mismatched)} shape mismatch(es):')
            lines += [
                f'  {k}: checkpoint {a} vs model {b}'
                for k, a, b in self.mismatched[:_MAX_LISTED]
            ]
            lines += _more(self.mismatched)
        if self.missing:
            lines.append(f'{len(self.missing)} missing key(s):')
            lines += _grouped(self.missing)
        return '\n'.join(lines)

    def format(self) -> str:
        """A table of counts followed by the details of each category.

        Returns:
            str: Human-readable report.
        """
        rows = [
            ('matched', len(self.matched)),
            ('renamed', len(self.renamed)),
            ('filled (num_batches_tracked)', len(self.filled)),
            ('new head (not in checkpoint)', len(self.new_head)),
            ('missing', len(self.missing)),
            ('unexpected (dropped)', len(self.unexpected)),
            ('shape mismatches', len(self.mismatched)),
        ]
        width = max(len(name) for name, _ in rows)
        rule = f'+-{"-" * width}-+-------+'
        lines = [
            f'source: {self.source}',
            f'config: {self.config}',
            rule,
            f'| {"tensors":<{width}} | count |',
            rule,
        ]
        lines += [f'| {name:<{width}} | {n:>5} |' for name, n in rows]
        lines.append(rule)
        if self.renamed:
            lines.append('renamed (old -> new):')
            lines += [
                f'  {r} ({n} keys)' for r, n in self.rename_rules().items()
            ]
        if self.new_head:
            lines.append('new head, initialised by the model (not written):')
            lines += _grouped(self.new_head)
        if self.unexpected:
            lines.append('unexpected (not written):')
            lines += _grouped(self.unexpected)
        if not self.ok:
            lines.append(self.problems())
        status = 'OK' if self.ok else 'REFUSED (architecture mismatch)'
        lines.append(f'result: {status}')
        if self.dst and self.ok:
            lines.append(f'written: {self.dst}')
        return '\n'.join(lines)


def _more(items: list) -> list[str]:
    extra = len(items) - _MAX_LISTED
    return [f'  ... and {extra} more'] if extra > 0 else []


def _counter_of_loaded_bn(key: str, found: dict) -> bool:
    """Whether ``key`` is the ``num_batches_tracked`` of a BatchNorm whose
    statistics the checkpoint has (old files lack the counter)."""
    suffix = 'num_batches_tracked'
    return key.endswith(suffix) and (
        key[: -len(suffix)] + 'running_mean' in found
    )


def _grouped(keys: list[str]) -> list[str]:
    """Keys listed by module (``backbone.stage0.2.*``: 210 tensors), so
    that long lists stay short and every missing module is named."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        parts = key.split('.')
        module = '.'.join(parts[:3]) + '.*' if len(parts) > 4 else key
        groups.setdefault(module, []).append(key)
    lines = [
        f'  {m} ({len(g)} tensors)' if len(g) > 1 else f'  {g[0]}'
        for m, g in groups.items()
    ]
    return lines[:_MAX_LISTED] + _more(lines)


def _rule_of(old: str, new: str) -> str:
    """``'keypoint_head.* -> head.*'`` for a key renamed by its prefix."""
    for src, dst in _PREFIX_RULES:
        if old.startswith(src) and new == dst + old[len(src) :]:
            return f'{src}* -> {dst}*'
    return f'{old} -> {new}'


def _sha256(filename: str) -> str | None:
    """sha256 of a local file (None for URLs and other backends)."""
    if not osp.isfile(filename):
        return None
    digest = hashlib.sha256()
    with open(filename, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _source_meta(filename: str) -> dict:
    """The ``meta`` dict of a checkpoint ({} if it has none)."""
    try:
        checkpoint = CheckpointLoader.load_checkpoint(filename, 'cpu')
    except Exception:  # already read once by read_state_dict
        return {}
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds'
    )


def build_model_from_config(config: str | Config) -> torch.nn.Module:
    """Build the model of a config in the mmseg scope (no weights loaded).

    Args:
        config (str | Config): Config file or object.

    Returns:
        nn.Module: The model.
    """
    from mmseg.registry import MODELS

    if isinstance(config, str):
        cfg = Config.fromfile(resolve_config_path(config))
    else:
        cfg = config
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return MODELS.build(cfg.model)


def resolve_config_path(config: str) -> str:
    """Path of a config file; ``mmseg::x.py`` names mmseg's bundled config
    ``x.py`` (e.g. ``mmseg::hrnet/fcn_hr18s_4xb2-40k_cityscapes-512x1024.py``).

    Args:
        config (str): File path or ``mmseg::`` name.

    Returns:
        str: An existing file path.
    """
    if config.startswith('mmseg::'):
        import mmseg

        root = Path(mmseg.__file__).parent / '.mim' / 'configs'
        path = root / config[len('mmseg::') :]
    else:
        path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f'config {config!r} not found ({path})')
    return str(path)


def map_state_dict(
    state: dict,
    target: dict,
    source: str = '',
    config: str = '',
    allow_new_head: bool = False,
) -> tuple[OrderedDict, ConversionReport]:
    """Map a checkpoint's keys onto a model's state-dict layout.

    Exact matches win; other keys go through the prefix rules
    (``keypoint_head.`` -> ``head.``, plain backbone -> ``backbone.``,
    ``backbone.`` -> bare backbone).

    Args:
        state (dict): Checkpoint state dict.
        target (dict): The model's state dict (keys and shapes).
        source (str): Checkpoint name, for the report.
        config (str): Config name, for the report.
        allow_new_head (bool): Report model keys outside ``backbone.``
            that the checkpoint lacks as ``new_head`` instead of
            ``missing``. Defaults to False.

    Returns:
        tuple[OrderedDict, ConversionReport]: The tensors in the model's key
        order (only keys found in the checkpoint or filled) and the report.
    """
    report = ConversionReport(source=source, config=config)
    found: dict[str, torch.Tensor] = {}
    rest = []
    for key, value in state.items():
        if key in target:
            found[key] = value
            report.matched.append(key)
        else:
            rest.append(key)
    for key in rest:
        for src, dst in _PREFIX_RULES:
            if not key.startswith(src):
                continue
            if src == '' and not key.startswith(_BACKBONE_ROOTS):
                continue
            new = dst + key[len(src) :]
            if new in target and new not in found:
                found[new] = state[key]
                report.renamed[key] = new
                break
        else:
            report.unexpected.append(key)
    out = OrderedDict()
    for key, own in target.items():
        if key in found:
            value = found[key]
            if tuple(value.shape) != tuple(own.shape):
                report.mismatched.append(
                    (key, tuple(value.shape), tuple(own.shape))
                )
            out[key] = value
        elif _counter_of_loaded_bn(key, found):
            out[key] = own.clone()
            report.filled.append(key)
        elif allow_new_head and not key.startswith(_BACKBONE):
            report.new_head.append(key)
        else:
            report.missing.append(key)
    return out, report


def convert_checkpoint(
    src: str,
    config: str,
    dst: str | None = None,
    *,
    allow_new_head: bool = False,
) -> ConversionReport:
    """Convert a checkpoint to the layout of the model of ``config``.

    Reads official Lite-HRNet pose files (mmpose 0.x: ``backbone.*``,
    ``keypoint_head.final_layer.*``), mmpose 1.x files (``head.*``), plain
    backbone state dicts and this package's seg / pose checkpoints. Refuses
    to convert (nothing is written) when a model tensor is missing or has
    another shape: the checkpoint is of another architecture. Moving to
    another task (a seg checkpoint into a pose config, a plain backbone
    into any model) leaves the task head out: allow it explicitly with
    ``allow_new_head`` (the backbone is still checked strictly).

    Args:
        src (str): Source checkpoint (path or any mmengine backend).
        config (str): Config file whose ``model`` is the target layout.
        dst (str, optional): Where to write ``{'state_dict', 'meta'}``.
            Defaults to None (only report).
        allow_new_head (bool): Accept a checkpoint without the target's
            task head (keys outside ``backbone.``); the written file then
            lacks them and the head keeps its initialisation when loaded.
            Defaults to False.

    Returns:
        ConversionReport: What was matched, renamed, dropped.

    Raises:
        CheckpointMismatchError: (a ``ValueError``) listing the missing
            keys and shape mismatches, on an architecture mismatch.
        RuntimeError: If ``src`` cannot be read (names the file).
        FileNotFoundError: If ``src`` does not exist.
    """
    state = read_state_dict(src)
    model = build_model_from_config(config)
    own = model.state_dict()
    mapped, report = map_state_dict(
        state, own, src, str(config), allow_new_head=allow_new_head
    )
    if not report.ok:
        raise CheckpointMismatchError(
            f'checkpoint {src!r} does not fit the model of {config!r} '
            '(another architecture or variant?); nothing written.\n'
            + report.problems(),
            report,
        )
    # Loading proves the result is a complete, loadable model.
    complete = OrderedDict(mapped)
    complete.update((k, own[k]) for k in report.new_head)
    load_state_dict_checked(model, complete, f'checkpoint {src!r}')
    if dst is not None:
        source_meta = _source_meta(src)
        meta = dict(
            converted_from=src,
            sha256=_sha256(src),
            config=str(config),
            date=_now(),
            renamed=dict(report.rename_rules()),
            dropped=list(report.unexpected),
            new_head=list(report.new_head),
        )
        if 'dataset_meta' in source_meta:
            meta['dataset_meta'] = source_meta['dataset_meta']
        _save({'state_dict': mapped, 'meta': meta}, dst)
        report.dst = dst
    return report


def _save(checkpoint: dict, dst: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(checkpoint, dst)


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
    naive = any('.branch2.' in k for k in state)
    module_type = 'NAIVE' if naive else 'LITE'
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
        src (str): A seg, pose or multi-task checkpoint (or a plain
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
        RuntimeError: If ``src`` cannot be read (names the file).
    """
    state = read_state_dict(src)
    backbone = OrderedDict(
        (k[len(_BACKBONE) :], v)
        for k, v in state.items()
        if k.startswith(_BACKBONE)
    )
    source_meta = _source_meta(src)
    if not backbone and any(k.startswith(_BACKBONE_ROOTS) for k in state):
        # already a bare backbone file
        backbone = OrderedDict(
            (k, v) for k, v in state.items() if k.startswith(_BACKBONE_ROOTS)
        )
    if not backbone:
        raise ValueError(
            f'checkpoint {src!r} has no backbone tensors (no "backbone.*" '
            'keys and no bare Lite-HRNet keys)'
        )
    task = infer_task(state) or source_meta.get('task')
    meta = infer_arch(backbone)
    meta.update(
        task=task,
        source=src,
        sha256=_sha256(src),
        date=_now(),
        prefix=_BACKBONE if keep_prefix else '',
        num_tensors=len(backbone),
    )
    if keep_prefix:
        backbone = OrderedDict((_BACKBONE + k, v) for k, v in backbone.items())
    _save({'state_dict': backbone, 'meta': meta}, dst)
    return meta
