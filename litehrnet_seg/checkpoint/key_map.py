"""Map a checkpoint's keys onto a model's state-dict layout.

The one table of known key renamings lives here (:data:`KEY_RENAMES`), and
:class:`MatchReport` says, grouped by module with counts, what fits.

Layouts met in practice:

* official Lite-HRNet / mmpose 0.x pose: ``backbone.*``,
  ``keypoint_head.final_layer.*``;
* mmpose 1.x and this package's pose model: ``backbone.*``,
  ``head.final_layer.*``;
* this package's seg model (mmseg ``EncoderDecoder``): ``backbone.*``,
  ``decode_head.*``;
* a bare backbone (``stem.*``, ``stage0.*``...), e.g. from
  ``tools/checkpoint/extract_backbone.py``;
* any of these saved from DDP (``module.``; stripped on reading).
"""

from collections import OrderedDict
from dataclasses import dataclass, field

import torch

BACKBONE = 'backbone.'
# Top-level names of a bare LiteHRNet state dict (no ``backbone.`` prefix).
BACKBONE_ROOTS = ('stem', 'transition', 'stage', 'head_layer')
# (checkpoint prefix, model prefix, what it is), tried in order for keys
# without an exact match in the model.
KEY_RENAMES = (
    ('keypoint_head.', 'head.', 'official Lite-HRNet / mmpose 0.x head'),
    ('', BACKBONE, 'bare backbone into a full model'),
    (BACKBONE, '', 'full model into a bare backbone'),
)
MAX_LISTED = 20  # lines listed per category; the counts are exact


@dataclass
class MatchReport:
    """How the tensors of a checkpoint map onto a model.

    Args:
        source (str): The checkpoint file.
        config (str): The config (or model) that is the target layout.
        matched (list[str]): Keys found unchanged in the model.
        renamed (dict[str, str]): Checkpoint key -> model key.
        missing (list[str]): Model keys the checkpoint does not provide.
        unexpected (list[str]): Checkpoint keys the model has no place for.
        mismatched (list[tuple]): ``(model key, checkpoint shape, model
            shape)`` for tensors present on both sides with other shapes.
        filled (list[str]): BatchNorm ``num_batches_tracked`` counters
            absent from the checkpoint (old files), taken from the model.
        new_head (list[str]): Model keys outside the backbone that the
            checkpoint lacks, accepted by the ``allow_new_head`` opt-in.
        skipped (list[str]): Checkpoint keys outside the backbone without
            a place in the model (the other task's head), skipped by the
            same opt-in.
    """

    source: str
    config: str
    matched: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    new_head: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every tensor fits: nothing missing, unexpected or of
        another shape (opt-in skips excepted)."""
        return not (self.missing or self.unexpected or self.mismatched)

    def rename_rules(self) -> dict[str, int]:
        """Renames grouped by rule (``'keypoint_head.* -> head.*'``) with
        the number of keys each one moved."""
        rules: dict[str, int] = {}
        for old, new in self.renamed.items():
            rule = _rule_of(old, new)
            rules[rule] = rules.get(rule, 0) + 1
        return rules

    def problems(self) -> str:
        """Mismatched, missing and unexpected keys as text ('' if none)."""
        lines = []
        if self.mismatched:
            lines.append(f'{len(self.mismatched)} shape mismatch(es):')
            lines += [
                f'  {k}: checkpoint {a} vs model {b}'
                for k, a, b in self.mismatched[:MAX_LISTED]
            ]
            lines += _more(len(self.mismatched))
        for name, keys in (
            (
                'missing key(s) (in the model, not in the checkpoint)',
                self.missing,
            ),
            (
                'unexpected key(s) (in the checkpoint, not in the model)',
                self.unexpected,
            ),
        ):
            if keys:
                lines.append(f'{len(keys)} {name}:')
                lines += grouped(keys)
        return '\n'.join(lines)

    def skipped_text(self) -> str:
        """What the ``allow_new_head`` opt-in left out ('' if nothing)."""
        lines = []
        if self.new_head:
            lines.append(
                f'{len(self.new_head)} model tensor(s) not in the checkpoint '
                'keep their initialisation:'
            )
            lines += grouped(self.new_head)
        if self.skipped:
            lines.append(
                f'{len(self.skipped)} checkpoint tensor(s) of another head '
                'were skipped:'
            )
            lines += grouped(self.skipped)
        return '\n'.join(lines)

    def format(self) -> str:
        """A table of counts followed by the details of each category."""
        rows = [
            ('matched', len(self.matched)),
            ('renamed', len(self.renamed)),
            ('filled (num_batches_tracked)', len(self.filled)),
            ('new head (kept initialised)', len(self.new_head)),
            ('other head (skipped)', len(self.skipped)),
            ('missing', len(self.missing)),
            ('unexpected', len(self.unexpected)),
            ('shape mismatches', len(self.mismatched)),
        ]
        width = max(len(name) for name, _ in rows)
        rule = f'+-{"-" * width}-+-------+'
        lines = [f'source: {self.source}', f'config: {self.config}', rule]
        lines.append(f'| {"tensors":<{width}} | count |')
        lines.append(rule)
        lines += [f'| {name:<{width}} | {n:>5} |' for name, n in rows]
        lines.append(rule)
        if self.renamed:
            lines.append('renamed (old -> new):')
            lines += [
                f'  {r} ({n} keys)' for r, n in self.rename_rules().items()
            ]
        if self.new_head or self.skipped:
            lines.append(self.skipped_text())
        if not self.ok:
            lines.append(self.problems())
        status = 'OK' if self.ok else 'REFUSED (the checkpoint does not fit)'
        lines.append(f'result: {status}')
        return '\n'.join(lines)


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit a model; ``report`` says what differs.

    Args:
        report (MatchReport): The full comparison.
    """

    def __init__(self, report: MatchReport) -> None:
        super().__init__(
            f'checkpoint {report.source!r} does not fit the model of '
            f'{report.config!r} (another architecture, variant or task?); '
            'nothing was loaded.\n' + report.problems()
        )
        self.report = report


def _more(count: int) -> list[str]:
    extra = count - MAX_LISTED
    return [f'  ... and {extra} more'] if extra > 0 else []


def grouped(keys: list[str]) -> list[str]:
    """Keys listed by module (``backbone.stage0.2.*: 210 tensors``), so
    that long lists stay short and every module is named.

    Args:
        keys (list[str]): State-dict keys.

    Returns:
        list[str]: Indented lines, at most ``MAX_LISTED`` plus a tail.
    """
    groups: dict[str, list[str]] = {}
    for key in keys:
        parts = key.split('.')
        module = '.'.join(parts[:3]) + '.*' if len(parts) > 4 else key
        groups.setdefault(module, []).append(key)
    lines = [
        f'  {m} ({len(g)} tensors)' if len(g) > 1 else f'  {g[0]}'
        for m, g in groups.items()
    ]
    return lines[:MAX_LISTED] + _more(len(lines))


def _rule_of(old: str, new: str) -> str:
    for src, dst, _ in KEY_RENAMES:
        if old.startswith(src) and new == dst + old[len(src) :]:
            return f'{src}* -> {dst}*'
    return f'{old} -> {new}'


def _counter_of_loaded_bn(key: str, found: dict) -> bool:
    """Whether ``key`` is the ``num_batches_tracked`` of a BatchNorm whose
    statistics the checkpoint has (old files lack the counter)."""
    suffix = 'num_batches_tracked'
    return key.endswith(suffix) and (
        key[: -len(suffix)] + 'running_mean' in found
    )


def _in_backbone(key: str, target: dict) -> bool:
    """Whether a key belongs to the backbone (the part every opt-in still
    checks strictly)."""
    if any(k.startswith(BACKBONE) for k in target):
        return key.startswith(BACKBONE)
    return True  # the model is a bare backbone


def map_state_dict(
    state: dict,
    target: dict,
    source: str = '',
    config: str = '',
    allow_new_head: bool = False,
) -> tuple[OrderedDict, MatchReport]:
    """Map a checkpoint's keys onto a model's state-dict layout.

    Exact matches win; other keys go through :data:`KEY_RENAMES`.

    Args:
        state (dict): Checkpoint state dict.
        target (dict): The model's state dict (keys and shapes).
        source (str): Checkpoint name, for the report.
        config (str): Config name, for the report.
        allow_new_head (bool): Accept a checkpoint of another task: model
            keys outside ``backbone.`` that it lacks become ``new_head``
            and its keys outside ``backbone.`` without a place become
            ``skipped``. The backbone is still checked strictly.
            Defaults to False.

    Returns:
        tuple[OrderedDict, MatchReport]: The tensors in the model's key
        order (those found in the checkpoint or filled) and the report.
    """
    report = MatchReport(source=source, config=config)
    found: dict[str, torch.Tensor] = {}
    rest = []
    for key, value in state.items():
        if key in target:
            found[key] = value
            report.matched.append(key)
        else:
            rest.append(key)
    for key in rest:
        for src, dst, _ in KEY_RENAMES:
            if not key.startswith(src):
                continue
            if src == '' and not key.startswith(BACKBONE_ROOTS):
                continue
            new = dst + key[len(src) :]
            if new in target and new not in found:
                found[new] = state[key]
                report.renamed[key] = new
                break
        else:
            if allow_new_head and not key.startswith(
                (BACKBONE, *BACKBONE_ROOTS)
            ):
                report.skipped.append(key)
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
        elif allow_new_head and not _in_backbone(key, target):
            report.new_head.append(key)
        else:
            report.missing.append(key)
    return out, report
